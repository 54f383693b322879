"""Passkeys (WebAuthn): register one after signing in, then sign in with it."""
