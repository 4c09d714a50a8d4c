"""How Debian's Chromium is launched (Playwright's own browser download is never used)."""
from __future__ import annotations

# Without these, Chromium tries Google's hosts at start-up on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
