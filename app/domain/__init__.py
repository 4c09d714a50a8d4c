"""The domain's vocabulary shared by every layer: events, clock."""
