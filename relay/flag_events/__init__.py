"""LaunchDarkly's flag events over recorded Unleash events: listing, facts, experiments, impact."""
