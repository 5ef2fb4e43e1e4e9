"""coatcheck with Django: login, a protected page, logout, a CSRF-protected form, messages."""
