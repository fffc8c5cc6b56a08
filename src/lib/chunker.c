/* chunker: placeholder until the module lands. */
