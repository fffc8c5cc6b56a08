/* rules: what this device uploads and what it downloads (docs/cli.md,
 * "Rules"). Each device holds two rule sets, up and down, kept in
 * DIR/.ferry/rules.json together with the change-detection mode.
 *
 * A rule set is a list of rules; a file is selected when ANY rule selects
 * it. A rule is one or more conditions that must ALL hold:
 *   all                  every file
 *   folder PATH          the file is PATH or under PATH/
 *   type EXT[,EXT...]    by extension, case-insensitive; the named groups
 *                        images, documents, video, audio, archives stand for
 *                        their extension lists (rules.c, docs/cli.md)
 *   max-size SIZE        at most SIZE bytes (K, M, G suffixes: 50M)
 *   ask                  the user chooses, file by file (see rules_check)
 * e.g. "folder Work type documents" selects documents under Work/. The
 * default rule set, in both directions, is the one rule "all".
 *
 * Text form (CLI and rules.json): a rule is its words joined by spaces:
 * "folder Work type documents max-size 50M". A folder PATH with spaces is
 * quoted by the shell as one argument: `ferry rules add down folder "My
 * Work"`; in rules.json a rule is a JSON array of words.
 *
 * Details (rules.c, docs/cli.md): each condition at most once in a rule;
 * "all" stands alone; a word list given to rules_set/rules_add may hold
 * several rules separated by the word "or" ("type images or folder Work"),
 * and rules_set takes the one word "none" for the empty set (every file
 * held). EXT is matched against the name's last extension ("a.tar.gz" has
 * "gz"); an EXT with a dot ("tar.gz") matches the end of the name. SIZE:
 * 123, 700K, 50M, 1.5G, 2T (binary multiples, an optional B or iB).
 * A NULL struct rules reads as the defaults (rules_check says SYNC).
 */
#ifndef FERRY_RULES_H
#define FERRY_RULES_H

#include <stddef.h>
#include <stdint.h>

/* Top-level folder of the space holding `ferry backup` sets: never synced
 * by sync or watch, in either direction. */
#define RULES_BACKUP_PREFIX ".ferry-backup"

enum rules_dir { RULES_UP = 0, RULES_DOWN = 1 };

/* What a rule set says about one file. */
enum rules_verdict {
        RULES_SYNC = 0, /* selected: sync it */
        RULES_HOLD = 1, /* not selected: hold it back, list it */
        RULES_ASK = 2,  /* selected by an ask rule only: the user decides */
};

/* How a round finds local changes (docs/cli.md, "Change detection"). */
enum rules_mode {
        RULES_MODE_INDEX = 0, /* compare the folder with the index (default) */
        RULES_MODE_SINCE = 1, /* files modified since the last successful upload */
};

struct rules;

#define RULES_FILE "rules.json"

/* Loads DIR/.ferry/rules.json (root is the linked folder); a missing file
 * gives the defaults. A file that does not parse: -EINVAL with a message
 * naming it. */
int rules_load(const char *root, struct rules **out);
/* Writes DIR/.ferry/rules.json atomically. */
int rules_save(const struct rules *r, const char *root);
void rules_free(struct rules *r);
/* The defaults (both sets "all", mode index), without reading a file. */
int rules_default(struct rules **out);
/* root/.ferry/rules.json, malloc'd (NULL: out of memory); a watch stats it
 * to re-read changed rules. */
char *rules_path(const char *root);

/* The verdict for one entry of the folder: path is a Ferry path, kind an
 * enum file_kind, size in bytes. Directories are selected when a folder
 * condition's PATH is the directory, under it or above it, and whatever
 * type/max-size say (they hold no content). When the verdict is not
 * RULES_SYNC, why (if not NULL) gets a short reason for `ferry held`, e.g.
 * "not under Work", "type .mkv not selected", "over 50M", "ask". */
enum rules_verdict rules_check(const struct rules *r, enum rules_dir dir, const char *path,
                               int kind, uint64_t size, char *why, size_t whylen);

enum rules_mode rules_mode(const struct rules *r);
void rules_set_mode(struct rules *r, enum rules_mode mode);
/* "index" / "since-last-sync", and back (-EINVAL with a message). */
const char *rules_mode_name(enum rules_mode mode);
int rules_mode_parse(const char *s);

/* A SIZE word (see above) in bytes; -EINVAL with a message. */
int rules_parse_size(const char *s, uint64_t *out);
/* The named group ("images", ...) a path's extension belongs to, or NULL:
 * the "type" column of the ask list. */
const char *rules_group_of(const char *path);

/* Editing (for `ferry rules`). words/n: one rule in text form, checked:
 * -EINVAL with a message for an unknown word, a missing value, a bad size
 * or an unsafe folder path. */
int rules_set(struct rules *r, enum rules_dir dir, char *const *words, size_t n); /* replace all */
/* Appends (after the existing rules); nothing changes on an error. */
int rules_add(struct rules *r, enum rules_dir dir, char *const *words, size_t n);
/* Removes rule number index (1-based, as `ferry rules show` numbers
 * them). -ENOENT when there is none. */
int rules_remove(struct rules *r, enum rules_dir dir, size_t index);
size_t rules_count(const struct rules *r, enum rules_dir dir);
/* Rule i (0-based) in text form, malloc'd. */
char *rules_text(const struct rules *r, enum rules_dir dir, size_t i);
/* Rule i (0-based) as its words (normalized: "folder Work/" is stored as
 * "folder", "Work"), valid until the rules change; returns their number. */
size_t rules_words(const struct rules *r, enum rules_dir dir, size_t i, char *const **words);

#endif
