/* cli.h - a small table-driven command-line parser in the shape users know
 * from clap (upstream bore): `--opt value`, `--opt=value`, `-s value`,
 * environment fallbacks, `[default: ...]` and `[env: ...]` in the help, and
 * usage errors on stderr with exit code 2, with clap's "a similar argument
 * exists" tip for a mistyped option or subcommand.
 *
 * Values are kept as strings; cli_u16/cli_uint convert them with range
 * checks and report a usage error naming the option. */
#ifndef BORE_CLI_H
#define BORE_CLI_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char short_name;        /* 0 if none */
    const char *long_name;  /* without dashes; NULL for the positional argument */
    const char *value_name; /* e.g. "PORT"; NULL for a switch (--strict), whose value is "true" */
    const char *env;        /* environment fallback, or NULL */
    const char *def;        /* default shown and used, or NULL */
    const char *help;
    int required;
    const char *value; /* result: NULL if absent and no env/default */
    int given;         /* result: set on the command line (not env/default) */
} cli_opt_t;

typedef struct {
    const char *name; /* "local" */
    const char *about;
    cli_opt_t *opts; /* positional arguments have long_name == NULL */
    size_t n_opts;
} cli_cmd_t;

enum { CLI_OK = 0, CLI_EXIT_OK = -1, CLI_USAGE = 2 };

/* Parses argv (after the subcommand name). Returns CLI_OK, CLI_EXIT_OK when
 * help was printed, or CLI_USAGE after printing the error. */
int cli_parse(cli_cmd_t *cmd, int argc, char **argv);

/* A repeatable option (--map A --map B): each value in order, at most `cap`. */
typedef struct {
    const char *long_name;
    const char **values;
    size_t cap;
    size_t n; /* result */
} cli_multi_t;

/* cli_parse, where the options named in `multi` may be repeated; their
 * values are collected there (opt->value is the last one). */
int cli_parse_multi(cli_cmd_t *cmd, int argc, char **argv, cli_multi_t *multi, size_t n_multi);

/* Converts opt->value. Return 0, or CLI_USAGE after printing an error. */
int cli_u16(const cli_cmd_t *cmd, const cli_opt_t *opt, uint16_t *out);
int cli_uint(const cli_cmd_t *cmd, const cli_opt_t *opt, unsigned min, unsigned max, unsigned *out);

/* Prints "error: <msg>", the usage line and the --help hint; returns CLI_USAGE. */
int cli_usage_error(const cli_cmd_t *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The candidate closest to `word` (`len` bytes) by edit distance (with
 * transpositions: `lcoal` is one edit from `local`), or NULL if none is
 * close enough to be what was meant. */
const char *cli_suggest(const char *word, size_t len, const char *const *candidates, size_t n);

#endif
