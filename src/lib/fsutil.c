/* fsutil: placeholder until the module lands. */
