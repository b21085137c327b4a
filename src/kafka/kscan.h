/* kscan.h - find every broker address in a Kafka response (protocol README
 * §4, §8), without decoding anything else.
 *
 * A scanner walks one complete response frame (size prefix included) with a
 * bounds-checked cursor and records where each (node id, host, port) sits:
 * offsets into the frame, never copies. Fields before the addresses are
 * skipped by length; Metadata and DescribeCluster stop at the end of the
 * broker list; Produce and Fetch skip records by their length prefix and
 * only look inside the top-level tagged field 0 (NodeEndpoints, KIP-951).
 * ApiVersions is scanned for the version caps (§8) instead.
 *
 * Error convention: 0, KF_BAD (malformed: truncated, negative length, a
 * count larger than the bytes left, an over-long varint) or KS_UNSUPPORTED
 * (a version of a rewritten API newer than this codec knows). */
#ifndef BORE_KSCAN_H
#define BORE_KSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "kframe.h"

enum { KS_UNSUPPORTED = -3 };

enum ks_kind { KS_BROKER = 0, KS_CONTROLLER = 1 };

typedef struct {
    int32_t node_id;
    int32_t port;
    uint32_t host_off;       /* Host field, its length prefix included */
    uint32_t host_field_len; /* prefix + bytes */
    uint32_t host_str_off;   /* the host bytes */
    uint32_t host_len;
    uint32_t port_off;
    uint8_t compact; /* COMPACT_STRING host */
    uint8_t port16;  /* UINT16 port (KRaft APIs) instead of INT32 */
    uint8_t in_tag;  /* inside the top-level tagged field 0 */
    uint8_t kind;    /* enum ks_kind */
} ks_addr_t;

/* A fixed replacement (ApiVersions caps): bytes [off, off+len) become repl. */
typedef struct {
    uint32_t off, len;
    uint8_t repl[5];
    uint8_t repl_len;
} ks_patch_t;

typedef struct {
    ks_addr_t *addrs;
    uint32_t n_addrs, cap_addrs;
    ks_patch_t *patches;
    uint32_t n_patches, cap_patches;
    int has_tag; /* addresses inside a tagged field whose size must follow */
    uint32_t tag_size_off, tag_size_len, tag_size;
} ks_scan_t;

/* Highest version of each rewritten API this codec can parse (§8 caps). */
int ks_max_version(int16_t api_key);

/* 1 if a response to this request must be buffered and scanned; 0 if it
 * carries no address and streams through untouched. */
int ks_needs_scan(int16_t api_key, int16_t api_version);

/* Scans a complete response frame (size prefix included). `s` is reset
 * first and may be reused across frames (its arrays are kept). */
int ks_scan(ks_scan_t *s, int16_t api_key, int16_t api_version, const uint8_t *frame, size_t len);

void ks_free(ks_scan_t *s);

#endif
