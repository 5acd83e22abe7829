"""Web entry points: the machine APIs and the Japanese operator UI (thin doors into the services)."""
