/* frame: placeholder until the module lands. */
