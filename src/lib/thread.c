/* thread: see thread.h. */
#include "thread.h"

#include <signal.h>

int thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
        sigset_t all, prev;
        int r;

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &prev);
        r = pthread_create(th, NULL, fn, arg);
        pthread_sigmask(SIG_SETMASK, &prev, NULL);
        return -r;
}
