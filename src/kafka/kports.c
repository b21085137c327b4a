/* kports.c - see kports.h. */
#include "kports.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "state.h"

#define LOG_TARGET "bore::kafka"

/* The whole file as JSON, or a fresh object when it is absent or bad. */
static json_t *load_root(const char *dir)
{
    char *data = NULL;
    size_t n = 0;
    json_t *root = NULL;
    if (state_read(dir, KPORTS_FILE, KPORTS_FILE_MAX, &data, &n) == 0) {
        json_error_t err;
        root = json_loadb(data, n, 0, &err);
        if (root == NULL || !json_is_object(root))
            log_warn("ignoring %s/%s: not the JSON object bore writes (%s)", dir, KPORTS_FILE,
                     root ? "not an object" : err.text);
    }
    free(data);
    if (root != NULL && json_is_object(root)) return root;
    json_decref(root);
    return json_object();
}

void kports_load(const char *dir, const char *key, kports_t *out)
{
    out->n = 0;
    json_t *root = load_root(dir);
    json_t *ports = json_object_get(json_object_get(root, "clusters"), key);
    const char *id;
    json_t *v;
    json_object_foreach(ports, id, v) {
        char *end;
        errno = 0;
        long nid = strtol(id, &end, 10);
        json_int_t port = json_is_integer(v) ? json_integer_value(v) : 0;
        if (errno || *end || end == id || nid < -1 || nid > INT32_MAX || port < 1 || port > 65535)
            continue;
        if (out->n < KPORTS_MAX) kports_set(out, (int32_t)nid, (uint16_t)port);
    }
    json_decref(root);
}

int kports_save(const char *dir, const char *key, const kports_t *in)
{
    json_t *root = load_root(dir);
    json_t *clusters = json_object_get(root, "clusters");
    if (!json_is_object(clusters)) {
        clusters = json_object();
        json_object_set_new(root, "clusters", clusters);
    }
    json_t *ports = json_object();
    for (size_t i = 0; i < in->n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", in->e[i].id);
        if (in->e[i].port != 0) json_object_set_new(ports, id, json_integer(in->e[i].port));
    }
    json_object_set_new(clusters, key, ports);
    json_object_set_new(root, "version", json_integer(1));
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL) return log_error("out of memory writing %s", KPORTS_FILE), -1;
    int rc = state_write(dir, KPORTS_FILE, text, strlen(text), 0600);
    free(text);
    return rc;
}

uint16_t kports_get(const kports_t *k, int32_t id)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->e[i].id == id) return k->e[i].port;
    return 0;
}

void kports_set(kports_t *k, int32_t id, uint16_t port)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->e[i].id == id) {
            k->e[i].port = port;
            return;
        }
    if (k->n < KPORTS_MAX) k->e[k->n++] = (kports_entry_t){id, port};
}
