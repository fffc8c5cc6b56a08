/* peers: the control list, that is the account's devices as GET
 * /api/v1/devices returns them (docs/api.md "Devices"), and the one
 * question the LAN code asks of it: which other device is on this
 * device's LAN.
 *
 * "Same LAN" (docs/lan.md): both devices registered a lan entry (address,
 * port, prefix), with the same prefix, and the network parts of the two
 * addresses under that prefix are equal. The addresses and prefixes are
 * what each watch found for itself (peers_local_addr: the local address of
 * the route to the server, and the prefix of the interface holding it), so
 * two devices behind one NAT on different subnets are not the same LAN,
 * and two on the same subnet are whatever their public address says.
 *
 * `ferry request-upload` picks its target from the list, `ferry watch`
 * keeps one fresh (hello and each devices event) for its LAN listener and
 * its downloads, and a sync round asks it for a peer to fetch chunks from.
 */
#ifndef FERRY_PEERS_H
#define FERRY_PEERS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lanproto.h"
#include "remote.h"

/* Longest textual IPv6 address plus a NUL (INET6_ADDRSTRLEN). */
#define PEERS_ADDR_MAX 46

struct peer {
        char *id, *name;
        int online;
        int this; /* the device asking */
        /* its LAN listener, has_lan 0 when it has none */
        int has_lan;
        char lan_addr[PEERS_ADDR_MAX];
        int lan_port, lan_prefix;
};

struct peers {
        struct peer *v;
        size_t n;
};

/* Reads a GET /api/v1/devices answer ({"devices": [...]}) into out (zeroed
 * by the caller; peers_free it). A device without an id is skipped; a lan
 * entry that does not make sense (bad address, port or prefix) counts as
 * none. */
int peers_parse(const json_t *resp, struct peers *out);

/* GET /api/v1/devices into out, as peers_parse. */
int peers_fetch(struct remote *rem, struct peers *out);

void peers_free(struct peers *p);

/* The device with this id, or else with this name; NULL when none. */
const struct peer *peers_find(const struct peers *p, const char *id_or_name);

/* The device marked "this"; NULL when none is. */
const struct peer *peers_self(const struct peers *p);

/* 1 when the addresses a (prefix pa) and b (prefix pb) are on the same LAN
 * as defined above, 0 when not (also when they are of different families
 * or the prefixes differ), -EINVAL when an address does not parse or a
 * prefix is out of range for its family. */
int peers_same_lan(const char *a, int pa, const char *b, int pb);

/* The network of addr under prefix as "10.77.1.0/24" into out. -EINVAL
 * as above, -ENOSPC when out is too small. */
int peers_subnet(const char *addr, int prefix, char *out, size_t len);

/* Whether two peers are on the same LAN (both have a lan entry and
 * peers_same_lan says so). */
int peers_on_same_lan(const struct peer *a, const struct peer *b);

/* An online device other than self on self's LAN (the first in the list's
 * order), or NULL. */
const struct peer *peers_lan_peer(const struct peers *p, const struct peer *self);

/* This device's place on the LAN into *me (id my_id, has_lan set): the lan
 * entry its watch registered (the list's "this" device), else the local
 * address of the route to server_url. 0, or a negative code when neither
 * is known. */
int peers_me(const struct peers *p, const char *my_id, const char *server_url, struct peer *me);

/* GET /api/v1/lan-key: the account's LAN key (docs/lan.md) into key and
 * its version into *version. */
int peers_fetch_key(struct remote *rem, uint8_t key[LANPROTO_KEY_LEN], int64_t *version);

/* The local address of the route to the server of server_url (no packet
 * is sent: a UDP socket is connected and asked its name) into addr, and
 * the prefix of the interface that holds it into *prefix (getifaddrs; 24
 * for IPv4 and 64 for IPv6 when no interface lists it). */
int peers_local_addr(const char *server_url, char *addr, size_t len, int *prefix);

/* The prefix length of the interface holding addr (getifaddrs), -ENOENT
 * when none holds it. */
int peers_iface_prefix(const char *addr, int *prefix);

#endif
