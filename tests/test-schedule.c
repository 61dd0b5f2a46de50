/* Tests for the refresh schedule and the retry backoff. */
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "profile/schedule.h"
#include "testlib.h"

#define T0 ((usec_t) 1700000000 * USEC_PER_SEC)
#define MIN_ USEC_PER_MINUTE
#define SEC USEC_PER_SEC

/* A fixed pseudo-random sequence (xorshift64*), so failures reproduce. */
static uint64_t next_random(uint64_t *state) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        return *state * UINT64_C(2685821657736338717);
}

START_TEST(test_hour_token) {
        uint64_t state = 1;
        usec_t lo = USEC_INFINITY, hi = 0;

        /* 60 min, refresh_before 10m: at 50 min, minus up to 2 min of spread */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 0, 0), T0 + 50 * MIN_);
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 0, 2 * MIN_), T0 + 48 * MIN_);
        for (int i = 0; i < 100000; i++) {
                usec_t at = schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 0, next_random(&state));
                lo = MIN(lo, at);
                hi = MAX(hi, at);
        }
        ck_assert_uint_ge(lo, T0 + 48 * MIN_);
        ck_assert_uint_le(hi, T0 + 50 * MIN_);
        /* the spread really spreads: the whole 2 minutes are used */
        ck_assert_uint_lt(lo, T0 + 48 * MIN_ + SEC);
        ck_assert_uint_gt(hi, T0 + 50 * MIN_ - SEC);

        /* AAD's random 60-90 min lifetimes: always counted from the answer */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 87 * MIN_, 10 * MIN_, 0, 0), T0 + 77 * MIN_);
        /* refresh_before 0: never later than 5 min before expiry */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 0, 0, 0), T0 + 55 * MIN_);
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 2 * MIN_, 0, 0), T0 + 55 * MIN_);
        /* refresh_before longer than the token: half its life */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 2 * 60 * MIN_, 0, 0), T0 + 30 * MIN_);
}
END_TEST

START_TEST(test_short_tokens) {
        uint64_t state = 2;

        /* 30 s (tests): about 15 s, spread by at most 1.5 s */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 30 * SEC, 10 * MIN_, 0, 0), T0 + 15 * SEC);
        for (int i = 0; i < 10000; i++) {
                usec_t at = schedule_refresh_at(T0, T0 + 30 * SEC, 10 * MIN_, 0, next_random(&state));
                ck_assert_uint_ge(at, T0 + 15 * SEC - 1500 * USEC_PER_MSEC);
                ck_assert_uint_le(at, T0 + 15 * SEC);
        }
        /* under 10 min, half the life even when refresh_before asks later */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 8 * MIN_, 1 * MIN_, 0, 0), T0 + 4 * MIN_);
        /* 12 min with refresh_before 10m would be at 2 min: the floor keeps it at a quarter */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 12 * MIN_, 10 * MIN_, 0, 0), T0 + 3 * MIN_);
        /* already expired, or expiring as obtained: now */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0, 10 * MIN_, 0, 12345), T0);
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 - SEC, 10 * MIN_, 0, 12345), T0);
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 1, 10 * MIN_, 0, 12345), T0);
}
END_TEST

START_TEST(test_refresh_in) {
        /* an earlier refresh_in wins */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 30 * MIN_, 0), T0 + 30 * MIN_);
        /* a later one does not delay */
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 58 * MIN_, 0), T0 + 50 * MIN_);
        ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 2 * 60 * MIN_, 0), T0 + 50 * MIN_);
        /* an absurd one cannot cause a refresh loop: a quarter of the life at the earliest */
        for (uint64_t r = 0; r < 1000; r += 7) {
                ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 60 * MIN_, 10 * MIN_, 1, r), T0 + 15 * MIN_);
                ck_assert_uint_eq(schedule_refresh_at(T0, T0 + 30 * SEC, 10 * MIN_, 1, r), T0 + 7500 * USEC_PER_MSEC);
        }
}
END_TEST

/* For any inputs: never before a quarter of the life, never after max(latest, floor). */
START_TEST(test_refresh_bounds) {
        uint64_t state = 3;

        for (int i = 0; i < 50000; i++) {
                usec_t lifetime = next_random(&state) % (26 * USEC_PER_HOUR);
                usec_t before = next_random(&state) % (2 * USEC_PER_HOUR);
                usec_t refresh_in = next_random(&state) % 3 == 0 ? 0 : next_random(&state) % (2 * USEC_PER_HOUR);
                usec_t at = schedule_refresh_at(T0, T0 + lifetime, before, refresh_in, next_random(&state));
                usec_t latest = lifetime >= 10 * MIN_ ? T0 + lifetime - 5 * MIN_ : T0 + lifetime / 2;

                ck_assert_uint_ge(at, T0 + lifetime / 4);
                ck_assert_uint_le(at, MAX(latest, T0 + lifetime / 4));
                if (lifetime > 0)
                        ck_assert_uint_lt(at, T0 + lifetime);
        }
}
END_TEST

START_TEST(test_backoff_growth) {
        usec_t prev_lo = 0, prev_hi = 0;

        /* equal jitter: [base/2, base], base doubling from 1 s up to 5 min */
        for (unsigned attempt = 1; attempt <= 40; attempt++) {
                usec_t base = attempt > 20 ? 5 * MIN_ : MIN((usec_t) SEC << (attempt - 1), 5 * MIN_);
                usec_t lo = schedule_backoff(attempt, T0, 0, USEC_INFINITY, 0);
                usec_t hi = schedule_backoff(attempt, T0, 0, USEC_INFINITY, base / 2);

                ck_assert_uint_eq(lo, base / 2);
                ck_assert_uint_eq(hi, base);
                ck_assert_uint_ge(lo, prev_lo);
                ck_assert_uint_ge(hi, prev_hi);
                prev_lo = lo;
                prev_hi = hi;
        }
        ck_assert_uint_eq(prev_hi, 5 * MIN_);
        ck_assert_uint_eq(schedule_backoff(1, T0, 0, USEC_INFINITY, 0), 500 * USEC_PER_MSEC);
        ck_assert_uint_eq(schedule_backoff(3, T0, 0, USEC_INFINITY, 2 * SEC + 1), 2 * SEC); /* wraps */
        ck_assert_uint_eq(schedule_backoff(0, T0, 0, USEC_INFINITY, 0), schedule_backoff(1, T0, 0, USEC_INFINITY, 0));
        ck_assert_uint_eq(schedule_backoff(UINT32_MAX, T0, 0, USEC_INFINITY, 0), 150 * SEC);

        uint64_t state = 4;
        for (int i = 0; i < 100000; i++) {
                unsigned attempt = 1 + (unsigned) (next_random(&state) % 30);
                usec_t d = schedule_backoff(attempt, T0, 0, USEC_INFINITY, next_random(&state));
                ck_assert_uint_ge(d, 500 * USEC_PER_MSEC);
                ck_assert_uint_le(d, 5 * MIN_);
        }
}
END_TEST

START_TEST(test_backoff_retry_after_and_last_chance) {
        /* Retry-After is honoured when longer, up to an hour */
        ck_assert_uint_eq(schedule_backoff(1, T0, 30 * SEC, USEC_INFINITY, 0), 30 * SEC);
        ck_assert_uint_eq(schedule_backoff(9, T0, 30 * SEC, USEC_INFINITY, 0), 128 * SEC);
        ck_assert_uint_eq(schedule_backoff(1, T0, 5 * USEC_PER_HOUR, USEC_INFINITY, 0), USEC_PER_HOUR);

        /* never past the last chance to beat expiry */
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, T0 + 10 * SEC, 0), 10 * SEC);
        ck_assert_uint_eq(schedule_backoff(1, T0, 10 * MIN_, T0 + 10 * SEC, 0), 10 * SEC);
        ck_assert_uint_eq(schedule_backoff(2, T0, 0, T0 + 10 * SEC, 0), 1 * SEC); /* shorter anyway */
        /* ... but the clamp never makes a tight loop */
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, T0 + 200 * USEC_PER_MSEC, 0), 1 * SEC);
        ck_assert_uint_eq(schedule_backoff(1, T0, 0, T0 + 200 * USEC_PER_MSEC, 0), 500 * USEC_PER_MSEC);
        /* past the last chance but with the token still alive: once a second until it expires,
         * whatever the backoff or Retry-After say */
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, T0, 0), 1 * SEC);
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, T0 - 5 * SEC, 150 * SEC), 1 * SEC);
        ck_assert_uint_eq(schedule_backoff(1, T0, 20 * SEC, T0 - 5 * SEC, 0), 1 * SEC);
        ck_assert_uint_eq(schedule_backoff(1, T0, 0, T0 - 5 * SEC, 0), 500 * USEC_PER_MSEC);
        /* with no token to save, the plain backoff */
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, USEC_INFINITY, 0), 150 * SEC);
        ck_assert_uint_eq(schedule_backoff(10, T0, 0, USEC_INFINITY, 150 * SEC), 5 * MIN_);
        ck_assert_uint_eq(schedule_backoff(1, T0, 20 * SEC, USEC_INFINITY, 0), 20 * SEC);

        uint64_t state = 5;
        for (int i = 0; i < 100000; i++) {
                unsigned attempt = 1 + (unsigned) (next_random(&state) % 30);
                usec_t ahead = next_random(&state) % (10 * MIN_);
                usec_t d = schedule_backoff(attempt, T0, next_random(&state) % (2 * MIN_), T0 + ahead,
                                            next_random(&state));
                ck_assert_uint_le(d, MAX(ahead, 1 * SEC));
                ck_assert_uint_gt(d, 0);
        }
}
END_TEST

START_TEST(test_min_interval) {
        /* expires_in 1: the plain schedule says half a second after; the floor says 30 s. */
        usec_t at = schedule_refresh_at(T0, T0 + 1 * SEC, 10 * MIN_, 0, 0);

        ck_assert_uint_lt(at, T0 + 1 * SEC);
        ck_assert_uint_eq(schedule_not_before(at, T0, SCHEDULE_MIN_INTERVAL), T0 + 30 * SEC);
        /* Expired on arrival: not at once either. */
        ck_assert_uint_eq(schedule_not_before(schedule_refresh_at(T0, T0, 10 * MIN_, 0, 0), T0, SCHEDULE_MIN_INTERVAL),
                          T0 + 30 * SEC);
        /* Later than the floor: unchanged; no floor: unchanged. */
        ck_assert_uint_eq(schedule_not_before(T0 + 50 * MIN_, T0, SCHEDULE_MIN_INTERVAL), T0 + 50 * MIN_);
        ck_assert_uint_eq(schedule_not_before(at, T0, 0), at);
        ck_assert_uint_eq(schedule_not_before(T0, USEC_INFINITY - 1, SCHEDULE_MIN_INTERVAL), USEC_INFINITY);
}
END_TEST

START_TEST(test_backward_clock_step) {
        usec_t boot = 1000 * SEC, expires = T0 + 60 * SEC, expires_boot, refresh_boot;

        /* Deadlines taken at T0 / boot. */
        expires_boot = schedule_boottime_of(expires, T0, boot);
        refresh_boot = schedule_boottime_of(T0 + 30 * SEC, T0, boot);
        ck_assert_uint_eq(expires_boot, boot + 60 * SEC);
        ck_assert_uint_eq(refresh_boot, boot + 30 * SEC);
        ck_assert_uint_eq(schedule_boottime_of(T0 - SEC, T0, boot), boot);

        /* 50 s later the wall clock is stepped back an hour: realtime alone would say an hour and 10 s
         * left; boottime says 10 s, and after 60 s the token is expired whatever the wall says. */
        ck_assert_uint_eq(schedule_time_left(expires, 0, T0 + 50 * SEC - 60 * MIN_, boot + 50 * SEC),
                          60 * MIN_ + 10 * SEC);
        ck_assert_uint_eq(schedule_time_left(expires, expires_boot, T0 + 50 * SEC - 60 * MIN_, boot + 50 * SEC),
                          10 * SEC);
        ck_assert_uint_eq(schedule_time_left(expires, expires_boot, T0 + 60 * SEC - 60 * MIN_, boot + 60 * SEC), 0);
        /* A forward step: the wall clock decides first. */
        ck_assert_uint_eq(schedule_time_left(expires, expires_boot, T0 + 2 * MIN_, boot + SEC), 0);
}
END_TEST

static Suite *schedule_suite(void) {
        Suite *s = suite_create("schedule");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_hour_token);
        tcase_add_test(tc, test_short_tokens);
        tcase_add_test(tc, test_refresh_in);
        tcase_add_test(tc, test_refresh_bounds);
        tcase_add_test(tc, test_backoff_growth);
        tcase_add_test(tc, test_backoff_retry_after_and_last_chance);
        tcase_add_test(tc, test_min_interval);
        tcase_add_test(tc, test_backward_clock_step);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(schedule_suite());
}
