/* buf: placeholder until the module lands. */
