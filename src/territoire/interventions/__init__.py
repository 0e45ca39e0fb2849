"""Interventions: teams, work orders, field reports, service levels and operations KPIs."""
