"""The skill-gap report (built in a later issue; the CLI tables read the same store views)."""
