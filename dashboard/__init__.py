"""The radmon dashboard: a Dash app mounted at /dashboard/ beside the API."""
