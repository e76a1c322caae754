"""Figures and widgets shared by the dashboard pages."""
