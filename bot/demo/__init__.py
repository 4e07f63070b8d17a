"""``accessbot demo``: the real bot plus a local page that plays the Slack workspace (see :mod:`bot.demo.main`)."""
