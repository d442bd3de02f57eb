"""Clients for third-party gateways (aamarPay)."""
