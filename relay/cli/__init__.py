"""The `relay` command, the composition root: `relay up`, its supervisor, the embedded Redis,
`relay status` and administration."""
