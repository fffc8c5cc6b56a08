/* path: placeholder until the module lands. */
