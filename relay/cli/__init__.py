"""The `relay` command, the composition root: `relay up`, its supervisor, the embedded Redis,
`relay listen` (a local receiver that prints deliveries), `relay status`, replay with its
progress, and administration (tokens, pull sources)."""
