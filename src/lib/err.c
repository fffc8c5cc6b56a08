/* err: placeholder until the module lands. */
