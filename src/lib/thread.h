/* thread: starting helper threads the one way Ferry does it.
 *
 * Every helper (the hashing thread, upload posters, the download
 * prefetcher, the watch's backup check) starts with all signals blocked,
 * so that SIGINT and SIGTERM reach only the threads that were there
 * before: the main thread decides what to abandon and tells the helpers.
 */
#ifndef FERRY_THREAD_H
#define FERRY_THREAD_H

#include <pthread.h>

/* Starts fn(arg) on a new thread with every signal blocked in it. Returns
 * 0 or a negative errno (no message set). */
int thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

#endif
