"""Web Push to night staff phones: VAPID keys, subscriptions, the sender."""
