/* cli.c - see cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_line(const cli_cmd_t *cmd, FILE *f)
{
    fprintf(f, "Usage: bore %s [OPTIONS]", cmd->name);
    for (size_t i = 0; i < cmd->n_opts; i++) {
        const cli_opt_t *o = &cmd->opts[i];
        if (o->required && o->long_name) fprintf(f, " --%s <%s>", o->long_name, o->value_name);
    }
    for (size_t i = 0; i < cmd->n_opts; i++) {
        const cli_opt_t *o = &cmd->opts[i];
        if (!o->long_name) fprintf(f, " <%s>", o->value_name);
    }
    fputc('\n', f);
}

int cli_usage_error(const cli_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    usage_line(cmd, stderr);
    fputs("\nFor more information, try '--help'.\n", stderr);
    return CLI_USAGE;
}

static void opt_label(const cli_opt_t *o, char *buf, size_t n)
{
    if (!o->long_name)
        snprintf(buf, n, "<%s>", o->value_name);
    else if (!o->value_name && o->short_name)
        snprintf(buf, n, "-%c, --%s", o->short_name, o->long_name);
    else if (!o->value_name)
        snprintf(buf, n, "    --%s", o->long_name);
    else if (o->short_name)
        snprintf(buf, n, "-%c, --%s <%s>", o->short_name, o->long_name, o->value_name);
    else
        snprintf(buf, n, "    --%s <%s>", o->long_name, o->value_name);
}

static void print_help(const cli_cmd_t *cmd)
{
    char label[128];
    int width = (int)strlen("-h, --help");
    for (size_t i = 0; i < cmd->n_opts; i++) {
        opt_label(&cmd->opts[i], label, sizeof label);
        if ((int)strlen(label) > width) width = (int)strlen(label);
    }
    printf("%s\n\n", cmd->about);
    usage_line(cmd, stdout);
    for (int pass = 0; pass < 2; pass++) {
        int first = 1;
        for (size_t i = 0; i < cmd->n_opts; i++) {
            const cli_opt_t *o = &cmd->opts[i];
            if ((pass == 0) != (o->long_name == NULL)) continue;
            if (first) printf("\n%s:\n", pass == 0 ? "Arguments" : "Options");
            first = 0;
            opt_label(o, label, sizeof label);
            printf("  %-*s  %s", width, label, o->help);
            if (o->env) printf(" [env: %s=]", o->env);
            if (o->def) printf(" [default: %s]", o->def);
            putchar('\n');
        }
        if (pass == 1) printf("  %-*s  %s\n", width, "-h, --help", "Print help");
    }
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions), for words of up to CLI_WORD_MAX bytes; longer: a large
 * number. */
#define CLI_WORD_MAX 48
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > CLI_WORD_MAX || lb > CLI_WORD_MAX) return (size_t)-1;
    size_t d[CLI_WORD_MAX + 1][CLI_WORD_MAX + 1];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *cli_suggest(const char *word, size_t len, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t lc = strlen(candidates[i]);
        size_t d = edit_distance(word, len, candidates[i], lc);
        /* One edit, or two in a longer word: closer than that is a guess. */
        if (d > 0 && d <= (lc >= 5 ? 2u : 1u) && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* "unexpected argument" for an unknown --name, with clap's tip when an
 * option of this command is one typo away. */
static int unknown_long(const cli_cmd_t *cmd, const char *arg, size_t name_len)
{
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < cmd->n_opts && n < 64; i++)
        if (cmd->opts[i].long_name) names[n++] = cmd->opts[i].long_name;
    if (n < 64) names[n++] = "help";
    const char *tip = cli_suggest(arg + 2, name_len, names, n);
    if (tip == NULL) return cli_usage_error(cmd, "unexpected argument '%s' found", arg);
    return cli_usage_error(cmd, "unexpected argument '%s' found\n\n  tip: a similar argument exists: '--%s'",
                           arg, tip);
}

static cli_opt_t *find_long(cli_cmd_t *cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->n_opts; i++) {
        cli_opt_t *o = &cmd->opts[i];
        if (o->long_name && strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0)
            return o;
    }
    return NULL;
}

static cli_opt_t *find_short(cli_cmd_t *cmd, char c)
{
    for (size_t i = 0; i < cmd->n_opts; i++)
        if (cmd->opts[i].short_name == c && c != 0) return &cmd->opts[i];
    return NULL;
}

int cli_parse(cli_cmd_t *cmd, int argc, char **argv) { return cli_parse_multi(cmd, argc, argv, NULL, 0); }

static cli_multi_t *find_multi(const cli_opt_t *o, cli_multi_t *multi, size_t n_multi)
{
    for (size_t i = 0; i < n_multi && o->long_name; i++)
        if (strcmp(multi[i].long_name, o->long_name) == 0) return &multi[i];
    return NULL;
}

int cli_parse_multi(cli_cmd_t *cmd, int argc, char **argv, cli_multi_t *multi, size_t n_multi)
{
    int seen[64] = {0};
    size_t next_pos = 0;
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        cli_opt_t *o = NULL;
        const char *val = NULL;
        if (!only_positional && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            print_help(cmd);
            return CLI_EXIT_OK;
        }
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t name_len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = find_long(cmd, a + 2, name_len);
            if (o == NULL) return unknown_long(cmd, a, name_len);
            if (eq) val = eq + 1;
        } else if (!only_positional && a[0] == '-' && a[1] != '\0') {
            o = find_short(cmd, a[1]);
            if (a[2] != '\0') val = a + 2;
        } else {
            while (next_pos < cmd->n_opts && cmd->opts[next_pos].long_name) next_pos++;
            if (next_pos == cmd->n_opts)
                return cli_usage_error(cmd, "unexpected argument '%s' found", a);
            o = &cmd->opts[next_pos++];
            val = a;
        }
        if (o == NULL) return cli_usage_error(cmd, "unexpected argument '%s' found", a);
        size_t idx = (size_t)(o - cmd->opts);
        cli_multi_t *m = find_multi(o, multi, n_multi);
        if (idx < 64 && seen[idx]++ && m == NULL)
            return cli_usage_error(cmd, "the argument '%s' cannot be used multiple times", a);
        if (o->long_name && o->value_name == NULL) { /* a switch */
            if (val != NULL)
                return cli_usage_error(cmd, "unexpected value '%s' for '--%s': it takes no value",
                                       val, o->long_name);
            o->value = "true";
            o->given = 1;
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "a value is required for '--%s <%s>' but none was supplied",
                                       o->long_name, o->value_name);
            val = argv[++i];
        }
        o->value = val;
        o->given = 1;
        if (m != NULL) {
            if (m->n == m->cap)
                return cli_usage_error(cmd, "the argument '--%s' can be given at most %zu times",
                                       o->long_name, m->cap);
            m->values[m->n++] = val;
        }
    }
    for (size_t i = 0; i < cmd->n_opts; i++) {
        cli_opt_t *o = &cmd->opts[i];
        if (o->value == NULL && o->env) {
            const char *e = getenv(o->env);
            if (e != NULL && *e != '\0') o->value = e;
        }
        if (o->value == NULL) o->value = o->def;
        if (o->value == NULL && o->required) {
            if (o->long_name)
                return cli_usage_error(cmd, "the following required arguments were not provided:\n  --%s <%s>",
                                       o->long_name, o->value_name);
            return cli_usage_error(cmd, "the following required arguments were not provided:\n  <%s>",
                                   o->value_name);
        }
    }
    return CLI_OK;
}

static int parse_ulong(const char *s, unsigned long *out)
{
    if (s == NULL || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *out = v;
    return 0;
}

static const char *opt_name(const cli_opt_t *o, char *buf, size_t n)
{
    opt_label(o, buf, n);
    return buf + strspn(buf, " ");
}

int cli_uint(const cli_cmd_t *cmd, const cli_opt_t *opt, unsigned min, unsigned max, unsigned *out)
{
    unsigned long v;
    char name[128];
    if (parse_ulong(opt->value, &v) != 0 || v < min || v > max)
        return cli_usage_error(cmd, "invalid value '%s' for '%s': expected a number from %u to %u",
                               opt->value ? opt->value : "", opt_name(opt, name, sizeof name), min,
                               max);
    *out = (unsigned)v;
    return 0;
}

int cli_u16(const cli_cmd_t *cmd, const cli_opt_t *opt, uint16_t *out)
{
    unsigned v;
    int rc = cli_uint(cmd, opt, 0, 65535, &v);
    if (rc == 0) *out = (uint16_t)v;
    return rc;
}
