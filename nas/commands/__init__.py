"""Sub-commands of the `nas` CLI; each module adds its parsers with `register`."""
