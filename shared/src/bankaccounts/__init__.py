"""The application every recipe in the cookbook deploys: bank accounts, event-sourced."""
