"""A4 monthly access-log analysis and its report, A2 annual roster inventory (the 監査 room)."""
