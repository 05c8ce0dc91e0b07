/*
 * rpc_load.c - closed-loop load on a newline-delimited AF_UNIX socket:
 * CLIENTS threads, each connects, sends LINE, waits for one reply line,
 * and again, for SECONDS. The same program drives mcpjobd and the echo
 * baseline so the two figures differ only in the server.
 *
 *   rpc_load SOCKET CLIENTS SECONDS LINE [EXPECT]
 *
 * A "%d" in LINE becomes the client's number (0..CLIENTS-1), so clients can
 * drive different jobs. With EXPECT, a reply without that text counts as
 * bad (a job.run --wait that did not succeed must not pass for a run).
 * Prints one line: requests=N seconds=S rps=R p50_us=A p99_us=B bad=K
 * (the first WARMUP replies of each client are not counted).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WARMUP   50
#define REPLY_MAX (1 << 20)

struct client {
	pthread_t tid;
	const char *path, *expect;
	char *line;
	size_t line_len;
	size_t bad; /* counted replies without expect */
	double seconds;
	uint32_t *lat_ns; /* latencies of counted requests */
	size_t n, cap;
	int failed;
};

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *path) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		perror("rpc_load: connect");
		return -1;
	}
	return fd;
}

/* Write the whole request; read until the reply's newline. 0 or -1. */
static int round_trip(int fd, const struct client *c, char *buf) {
	size_t off = 0;
	while (off < c->line_len) {
		ssize_t w = write(fd, c->line + off, c->line_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, REPLY_MAX - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
		if (buf[got - 1] == '\n') { /* one request in flight: the reply ends the read */
			buf[got - 1] = '\0';
			return 0;
		}
		if (got == REPLY_MAX)
			return -1;
	}
}

static void *client_run(void *arg) {
	struct client *c = arg;
	char *buf = malloc(REPLY_MAX);
	int fd = connect_to(c->path);
	if (fd < 0 || buf == NULL) {
		c->failed = 1;
		free(buf);
		return NULL;
	}
	for (int i = 0; i < WARMUP && !c->failed; i++)
		c->failed = round_trip(fd, c, buf) != 0;
	double end = now_s() + c->seconds;
	while (!c->failed) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (round_trip(fd, c, buf) != 0) {
			c->failed = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (c->expect && strstr(buf, c->expect) == NULL)
			c->bad++;
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 4096;
			c->lat_ns = realloc(c->lat_ns, c->cap * sizeof *c->lat_ns);
		}
		c->lat_ns[c->n++] = (uint32_t)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
		if (b.tv_sec + b.tv_nsec / 1e9 >= end)
			break;
	}
	close(fd);
	free(buf);
	return NULL;
}

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc < 5 || argc > 6 || atoi(argv[2]) < 1 || atof(argv[3]) <= 0) {
		fprintf(stderr, "usage: rpc_load SOCKET CLIENTS SECONDS LINE [EXPECT]\n");
		return 2;
	}
	int nclients = atoi(argv[2]);
	struct client *cs = calloc((size_t)nclients, sizeof *cs);
	double t0 = now_s();
	for (int i = 0; i < nclients; i++) {
		const char *pc = strstr(argv[4], "%d");
		char *line = malloc(strlen(argv[4]) + 16);
		if (pc)
			sprintf(line, "%.*s%d%s\n", (int)(pc - argv[4]), argv[4], i, pc + 2);
		else
			sprintf(line, "%s\n", argv[4]);
		cs[i] = (struct client){.path = argv[1], .line = line, .line_len = strlen(line),
		                        .seconds = atof(argv[3]), .expect = argc == 6 ? argv[5] : NULL};
		pthread_create(&cs[i].tid, NULL, client_run, &cs[i]);
	}
	size_t total = 0, bad = 0;
	int failed = 0;
	for (int i = 0; i < nclients; i++) {
		pthread_join(cs[i].tid, NULL);
		total += cs[i].n;
		bad += cs[i].bad;
		failed |= cs[i].failed;
		free(cs[i].line);
	}
	double secs = now_s() - t0;
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < nclients; i++) {
		memcpy(all + k, cs[i].lat_ns, cs[i].n * sizeof *all);
		k += cs[i].n;
		free(cs[i].lat_ns);
	}
	qsort(all, total, sizeof *all, cmp_u32);
	if (failed || total == 0) {
		fprintf(stderr, "rpc_load: a client failed (connection closed or error)\n");
		return 1;
	}
	/* Throughput over the measured phase: each client's counted requests /
	 * the wall time; the warm-up is short against SECONDS. */
	printf("requests=%zu seconds=%.3f rps=%.1f p50_us=%.1f p99_us=%.1f bad=%zu\n", total, secs,
	       total / atof(argv[3]), all[total / 2] / 1000.0, all[total * 99 / 100] / 1000.0, bad);
	free(all);
	free(cs);
	return 0;
}
