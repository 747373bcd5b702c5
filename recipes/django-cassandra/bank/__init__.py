"""The bank-accounts Django app: the HTTP contract over the shared ``BankAccounts`` application."""
