/*
 * net.c - network state from rtnetlink, metered from NetworkManager or
 * interface names.
 *
 * The rule:
 *   none       no default route (destination length 0, main table, unicast,
 *              IPv4 or IPv6) whose output interface is up: IFF_UP and
 *              running (IFF_RUNNING, or operstate up/unknown), not loopback.
 *              With several, the one with the lowest metric is "the" default
 *              route, as the kernel would pick it.
 *   metered    there is one, and NetworkManager runs and says Metered is
 *              NM_METERED_YES or NM_METERED_GUESS_YES; or NetworkManager does
 *              not run (or answers NM_METERED_UNKNOWN) and the default
 *              route's interface name matches a metered_interfaces pattern
 *              (fnmatch; default wwan*, ppp*, usb*).
 *   unmetered  there is one and neither says metered.
 *   unknown    rtnetlink cannot be opened or dumped (logged once).
 *
 * Events: a NETLINK_ROUTE socket joined to RTMGRP_LINK, RTMGRP_IPV4_ROUTE
 * and RTMGRP_IPV6_ROUTE is a libevent read event. Any message there (or an
 * overrun) means "something changed": we drain the socket, then re-dump the
 * main table's routes and look up the few candidate links on a second,
 * synchronous socket (small, bounded) and recompute. NetworkManager's
 * PropertiesChanged and NameOwnerChanged signals recompute the metered part.
 */
#include "platform/linux/linux.h"

#include <errno.h>
#include <fnmatch.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#if MCPJOB_WITH_SYSTEMD
#include <systemd/sd-bus.h>
#endif
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define NET_MAX_CANDIDATES 32  /* default routes considered per dump */
#define NET_BUF_SIZE (64 * 1024)
#define NET_DUMP_TRIES 3       /* a dump interrupted by a change is retried */

#define NM_BUS   "org.freedesktop.NetworkManager"
#define NM_PATH  "/org/freedesktop/NetworkManager"
#define NM_OWNER_MATCH                                                                   \
	"type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"      \
	"interface='org.freedesktop.DBus',member='NameOwnerChanged',"                    \
	"arg0='org.freedesktop.NetworkManager'"

struct net_candidate {
	int ifindex;
	uint32_t metric;
};

struct net_dump {
	struct net_candidate c[NET_MAX_CANDIDATES];
	size_t n;
};

struct net_link {
	bool found;
	bool up;
	char name[IFNAMSIZ];
};

struct linux_net {
	int ev_fd;   /* multicast listener; -1 when rtnetlink is unavailable */
	int dump_fd; /* requests and their replies */
	struct event *ev;
	uint32_t seq;
	char *buf;
	bool ok;                  /* the last dump worked */
	bool have_route;          /* an up default route exists */
	char ifname[IFNAMSIZ];    /* its interface */
	int nm_metered;           /* 1, 0, or -1: no NetworkManager answer */
	bool warned;
};

bool linux_net_iface_metered(const struct device_settings *s, const char *ifname) {
	for (char **pat = s ? s->metered_interfaces : NULL; pat && *pat; pat++)
		if (fnmatch(*pat, ifname, 0) == 0)
			return true;
	return false;
}

int linux_net_nm_metered(uint32_t nm_metered) {
	switch (nm_metered) {
	case 1: /* NM_METERED_YES */
	case 3: /* NM_METERED_GUESS_YES */
		return 1;
	case 2: /* NM_METERED_NO */
	case 4: /* NM_METERED_GUESS_NO */
		return 0;
	default: /* NM_METERED_UNKNOWN */
		return -1;
	}
}

/* Combine route, link and NetworkManager into lp->now.network and publish. */
static void net_decide(struct linux_priv *lp) {
	struct linux_net *n = lp->net;
	if (!n->ok)
		lp->now.network = DEV_UNKNOWN;
	else if (!n->have_route)
		lp->now.network = DEV_NET_NONE;
	else if (n->nm_metered >= 0)
		lp->now.network = n->nm_metered ? DEV_NET_METERED : DEV_NET_UNMETERED;
	else
		lp->now.network = linux_net_iface_metered(lp->p->settings, n->ifname)
		                      ? DEV_NET_METERED
		                      : DEV_NET_UNMETERED;
	linux_publish(lp);
}

static void net_fail(struct linux_priv *lp, const char *what, int err) {
	struct linux_net *n = lp->net;
	if (!n->warned)
		log_warning("network state unknown: %s: %s (constraints on the network treat it "
		            "as unknown until it can be read)",
		            what, strerror(err));
	n->warned = true;
	n->ok = false;
	lp->now.network = DEV_UNKNOWN;
	linux_publish(lp);
}

typedef void (*net_msg_fn)(struct nlmsghdr *h, void *arg);

/* Receive the answer to request @seq, calling @fn on each message. Returns 0,
 * -EINTR when a dump was interrupted by a change, or another -errno. */
static int net_receive(struct linux_net *n, uint32_t seq, net_msg_fn fn, void *arg) {
	int intr = 0;
	for (;;) {
		ssize_t len = recv(n->dump_fd, n->buf, NET_BUF_SIZE, MSG_TRUNC);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return -errno;
		if (len > NET_BUF_SIZE)
			return -EMSGSIZE;
		for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)len;) {
			struct nlmsghdr *h = (struct nlmsghdr *)(n->buf + off);
			if (h->nlmsg_len < sizeof *h || h->nlmsg_len > (size_t)len - off)
				return -EBADMSG;
			off += NLMSG_ALIGN(h->nlmsg_len);
			if (h->nlmsg_seq != seq)
				continue; /* a late answer to an earlier request */
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = -EINTR;
			if (h->nlmsg_type == NLMSG_DONE)
				return intr;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return h->nlmsg_len < NLMSG_LENGTH(sizeof *e) ? -EBADMSG : e->error;
			}
			fn(h, arg);
			if (!(h->nlmsg_flags & NLM_F_MULTI))
				return intr;
		}
	}
}

static int net_request(struct linux_net *n, struct nlmsghdr *req, net_msg_fn fn, void *arg) {
	req->nlmsg_seq = ++n->seq;
	if (send(n->dump_fd, req, req->nlmsg_len, 0) < 0)
		return -errno;
	return net_receive(n, req->nlmsg_seq, fn, arg);
}

static void net_add_candidate(struct net_dump *d, int ifindex, uint32_t metric) {
	if (ifindex > 0 && d->n < NET_MAX_CANDIDATES)
		d->c[d->n++] = (struct net_candidate){ifindex, metric};
}

static void net_add_multipath(struct net_dump *d, struct rtattr *a, uint32_t metric) {
	struct rtnexthop *nh = RTA_DATA(a);
	size_t left = RTA_PAYLOAD(a);
	while (left >= sizeof *nh && nh->rtnh_len >= sizeof *nh && nh->rtnh_len <= left) {
		net_add_candidate(d, nh->rtnh_ifindex, metric);
		if ((size_t)RTNH_ALIGN(nh->rtnh_len) >= left)
			break;
		left -= RTNH_ALIGN(nh->rtnh_len);
		nh = RTNH_NEXT(nh);
	}
}

static void net_on_route(struct nlmsghdr *h, void *arg) {
	struct rtmsg *rt = NLMSG_DATA(h);
	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof *rt))
		return;
	if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST ||
	    (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6))
		return;
	uint32_t table = rt->rtm_table, metric = 0;
	int oif = 0;
	struct rtattr *multipath = NULL;
	int left = (int)RTM_PAYLOAD(h);
	for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
		if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4)
			memcpy(&table, RTA_DATA(a), 4);
		else if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4)
			memcpy(&oif, RTA_DATA(a), 4);
		else if (a->rta_type == RTA_PRIORITY && RTA_PAYLOAD(a) >= 4)
			memcpy(&metric, RTA_DATA(a), 4);
		else if (a->rta_type == RTA_MULTIPATH)
			multipath = a;
	}
	if (table != RT_TABLE_MAIN)
		return;
	net_add_candidate(arg, oif, metric);
	if (multipath)
		net_add_multipath(arg, multipath, metric);
}

static void net_on_link(struct nlmsghdr *h, void *arg) {
	struct net_link *l = arg;
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof *ifi))
		return;
	unsigned char operstate = IF_OPER_UNKNOWN;
	int left = (int)IFLA_PAYLOAD(h);
	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
		if (a->rta_type == IFLA_IFNAME)
			snprintf(l->name, sizeof l->name, "%.*s", (int)RTA_PAYLOAD(a),
			         (const char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_OPERSTATE && RTA_PAYLOAD(a) >= 1)
			operstate = *(unsigned char *)RTA_DATA(a);
	}
	bool running = (ifi->ifi_flags & IFF_RUNNING) || operstate == IF_OPER_UP ||
	               operstate == IF_OPER_UNKNOWN;
	l->found = true;
	l->up = (ifi->ifi_flags & IFF_UP) && running && !(ifi->ifi_flags & IFF_LOOPBACK);
}

static int net_dump_routes(struct linux_net *n, struct net_dump *d) {
	int r = -EINTR;
	for (int i = 0; i < NET_DUMP_TRIES && r == -EINTR; i++) {
		struct {
			struct nlmsghdr h;
			struct rtmsg rt;
		} req = {
			.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETROUTE,
			      .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
			/* The table is a filter only where NETLINK_GET_STRICT_CHK works. */
			.rt = {.rtm_family = AF_UNSPEC, .rtm_table = RT_TABLE_MAIN},
		};
		d->n = 0;
		r = net_request(n, &req.h, net_on_route, d);
	}
	return r;
}

static int net_get_link(struct linux_net *n, int ifindex, struct net_link *l) {
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
	} req = {
		.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST},
		.ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex},
	};
	*l = (struct net_link){0};
	int r = net_request(n, &req.h, net_on_link, l);
	return r == -ENODEV ? 0 : r; /* gone since the route dump: not up */
}

static int net_cmp_metric(const void *a, const void *b) {
	const struct net_candidate *x = a, *y = b;
	return x->metric < y->metric ? -1 : x->metric > y->metric;
}

/* Re-dump and recompute; on failure the network becomes unknown. */
static void net_refresh(struct linux_priv *lp) {
	struct linux_net *n = lp->net;
	struct net_dump d;
	int r = net_dump_routes(n, &d);
	if (r < 0) {
		net_fail(lp, "dumping routes over rtnetlink", -r);
		return;
	}
	qsort(d.c, d.n, sizeof d.c[0], net_cmp_metric);
	n->ok = true;
	n->have_route = false;
	for (size_t i = 0; i < d.n && !n->have_route; i++) {
		struct net_link l;
		if ((r = net_get_link(n, d.c[i].ifindex, &l)) < 0) {
			net_fail(lp, "reading a link over rtnetlink", -r);
			return;
		}
		if (l.found && l.up) {
			n->have_route = true;
			memcpy(n->ifname, l.name, sizeof n->ifname);
		}
	}
	net_decide(lp);
}

static void net_event_cb(evutil_socket_t fd, short what, void *arg) {
	struct linux_priv *lp = arg;
	(void)what;
	/* The content does not matter, only that something changed; an overrun
	 * (ENOBUFS) means the same. */
	for (;;) {
		ssize_t len = recv(fd, lp->net->buf, NET_BUF_SIZE, MSG_DONTWAIT);
		if (len < 0 && (errno == EINTR || errno == ENOBUFS))
			continue;
		if (len <= 0)
			break;
	}
	net_refresh(lp);
}

static int net_socket(uint32_t groups) {
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (groups ? SOCK_NONBLOCK : 0),
	                NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = groups};
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!groups) {
		int one = 1;
		struct timeval tv = {.tv_sec = 2}; /* the kernel answers at once; never hang */
		(void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	return fd;
}

/* --- NetworkManager -------------------------------------------------------- */
#if MCPJOB_WITH_SYSTEMD

static int nm_get_cb(sd_bus_message *m, void *arg, sd_bus_error *err) {
	struct linux_priv *lp = arg;
	uint32_t v;
	(void)err;
	if (sd_bus_message_is_method_error(m, NULL)) {
		log_debug("NetworkManager not answering (%s): metered by interface name",
		          sd_bus_message_get_error(m)->name);
		lp->net->nm_metered = -1;
	} else if (sd_bus_message_read(m, "v", "u", &v) >= 0) {
		lp->net->nm_metered = linux_net_nm_metered(v);
	}
	net_decide(lp);
	return 0;
}

static void nm_get(struct linux_priv *lp) {
	int r = sd_bus_call_method_async(lp->bus, NULL, NM_BUS, NM_PATH,
	                                 "org.freedesktop.DBus.Properties", "Get", nm_get_cb, lp,
	                                 "ss", NM_BUS, "Metered");
	if (r < 0)
		log_debug("cannot ask NetworkManager for Metered: %s", strerror(-r));
}

static int nm_changed_cb(sd_bus_message *m, void *arg, sd_bus_error *err) {
	struct linux_priv *lp = arg;
	uint32_t v;
	(void)err;
	if (linux_bus_changed_prop(m, NM_BUS, "Metered", 'u', &v) > 0) {
		lp->net->nm_metered = linux_net_nm_metered(v);
		net_decide(lp);
	}
	return 0;
}

/* NetworkManager started or stopped: ask again, or stop trusting it. */
static int nm_owner_cb(sd_bus_message *m, void *arg, sd_bus_error *err) {
	struct linux_priv *lp = arg;
	const char *name, *old_owner, *new_owner;
	(void)err;
	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
		return 0;
	if (new_owner[0] != '\0') {
		nm_get(lp);
	} else {
		lp->net->nm_metered = -1;
		net_decide(lp);
	}
	return 0;
}

/* Subscribe first, then ask: a change after the answer is then never missed. */
static void nm_watch(struct linux_priv *lp) {
	uint32_t v;
	int r = sd_bus_add_match_async(lp->bus, NULL, NM_OWNER_MATCH, nm_owner_cb, NULL, lp);
	if (r >= 0)
		r = sd_bus_match_signal_async(lp->bus, NULL, NM_BUS, NM_PATH,
		                              "org.freedesktop.DBus.Properties",
		                              "PropertiesChanged", nm_changed_cb, NULL, lp);
	if (r < 0)
		log_debug("cannot watch NetworkManager: %s", strerror(-r));
	if (linux_bus_get_prop(lp, NM_BUS, NM_PATH, NM_BUS, "Metered", 'u', &v) == 0)
		lp->net->nm_metered = linux_net_nm_metered(v);
	else
		log_debug("NetworkManager does not answer: metered by interface name");
}
#else
static void nm_watch(struct linux_priv *lp) {
	(void)lp; /* never called: there is no bus without libsystemd */
}
#endif

/* --- open/close ------------------------------------------------------------ */

void linux_net_open(struct linux_priv *lp) {
	struct linux_net *n = xcalloc(1, sizeof *n);
	lp->net = n;
	n->nm_metered = -1;
	n->buf = xmalloc(NET_BUF_SIZE);
	n->dump_fd = -1;
	n->ev_fd = net_socket(RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	if (n->ev_fd < 0 || (n->dump_fd = net_socket(0)) < 0) {
		int e = errno;
		if (n->ev_fd >= 0)
			close(n->ev_fd);
		n->ev_fd = -1;
		net_fail(lp, "opening a NETLINK_ROUTE socket", e);
		return;
	}
	n->ev = event_new(lp->p->base, n->ev_fd, EV_READ | EV_PERSIST, net_event_cb, lp);
	event_add(n->ev, NULL);
	if (lp->bus)
		nm_watch(lp);
	net_refresh(lp);
}

void linux_net_bus_gone(struct linux_priv *lp) {
	lp->net->nm_metered = -1;
	net_decide(lp);
}

void linux_net_close(struct linux_priv *lp) {
	struct linux_net *n = lp->net;
	if (n == NULL)
		return;
	if (n->ev)
		event_free(n->ev);
	if (n->ev_fd >= 0)
		close(n->ev_fd);
	if (n->dump_fd >= 0)
		close(n->dump_fd);
	free(n->buf);
	free(n);
	lp->net = NULL;
}
