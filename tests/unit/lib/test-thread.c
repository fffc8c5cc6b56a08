/* Unit tests for thread: the function runs on a new thread with its
 * argument, every signal is blocked there, and the caller's own signal
 * mask is what it was. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "thread.h"

struct seen {
        pthread_t self;
        int ran;
        int int_blocked, term_blocked, usr1_blocked;
};

static void *body(void *arg)
{
        struct seen *s = arg;
        sigset_t cur;

        pthread_sigmask(SIG_SETMASK, NULL, &cur);
        s->self = pthread_self();
        s->int_blocked = sigismember(&cur, SIGINT);
        s->term_blocked = sigismember(&cur, SIGTERM);
        s->usr1_blocked = sigismember(&cur, SIGUSR1);
        s->ran = 1;
        return s;
}

static void test_runs_with_signals_blocked(void **state)
{
        struct seen s = {0};
        sigset_t before, after;
        pthread_t th;
        void *ret = NULL;

        (void)state;
        pthread_sigmask(SIG_SETMASK, NULL, &before);
        assert_int_equal(sigismember(&before, SIGINT), 0);
        assert_int_equal(thread_start(&th, body, &s), 0);
        assert_int_equal(pthread_join(th, &ret), 0);
        assert_ptr_equal(ret, &s);
        assert_int_equal(s.ran, 1);
        assert_false(pthread_equal(s.self, pthread_self()));
        assert_int_equal(s.int_blocked, 1);
        assert_int_equal(s.term_blocked, 1);
        assert_int_equal(s.usr1_blocked, 1);
        /* the caller keeps its own mask */
        pthread_sigmask(SIG_SETMASK, NULL, &after);
        assert_int_equal(sigismember(&after, SIGINT), 0);
        assert_int_equal(sigismember(&after, SIGTERM), sigismember(&before, SIGTERM));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_runs_with_signals_blocked),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
