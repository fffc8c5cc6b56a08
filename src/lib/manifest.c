/* manifest: placeholder until the module lands. */
