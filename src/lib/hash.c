/* hash: placeholder until the module lands. */
