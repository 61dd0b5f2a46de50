/* Tests for the profile engine's decisions, without a daemon: a stand-in refresh source the test
 * answers itself and a stand-in clock, a real loop, state file and token file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "profile/profile-private.h" /* profile_refresh_start(): what the refresh timer calls */
#include "profile/profile.h"
#include "profile/store.h"
#include "shared/config.h"
#include "testlib.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"

/* ---- the stand-in clock: ten days ahead of the system's, so that no timer the profile arms on
 * the system's clocks fires while a test runs ----------------------------------------------- */

static usec_t fake_offset;

static usec_t fake_now(clockid_t clock) {
        usec_t real = clock == CLOCK_REALTIME   ? now_realtime()
                      : clock == CLOCK_BOOTTIME ? now_boottime()
                                                : now_monotonic();
        return real + fake_offset;
}

/* ---- the stand-in refresh source ------------------------------------------------------------ */

typedef struct FakeRefresh {
        const RefreshCallbacks *cb;
        usec_t time_left;
        bool superseded;
} FakeRefresh;

static FakeRefresh *fake_current;
static unsigned fake_starts;
static char fake_sent_token[64];

static int fake_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                      const Secret *refresh_token, usec_t time_left, const RefreshCallbacks *callbacks, Refresh **ret) {
        FakeRefresh *f = calloc(1, sizeof *f);

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_null(fake_current); /* one refresh at a time */
        f->cb = callbacks;
        f->time_left = time_left;
        snprintf(fake_sent_token, sizeof fake_sent_token, "%s", secret_reveal(refresh_token));
        fake_current = f;
        fake_starts++;
        *ret = (Refresh *) f;
        return 0;
}

static Refresh *fake_free(Refresh *r) {
        if (r) {
                ck_assert_ptr_eq((FakeRefresh *) r, fake_current);
                free(fake_current);
                fake_current = NULL;
        }
        return NULL;
}

static void fake_set_config(Refresh *r, const ProfileConfig *cfg) {
}

static void fake_supersede(Refresh *r) {
        ((FakeRefresh *) r)->superseded = true;
}

static const RefreshSource fake_source = {
        .start = fake_start,
        .free = fake_free,
        .set_config = fake_set_config,
        .supersede = fake_supersede,
};

/* Answer the refresh under way as the identity provider would have. */
static void fake_answer(const RefreshAnswer *a) {
        ck_assert_ptr_nonnull(fake_current);
        fake_current->cb->on_done(a, fake_current->cb->userdata);
        ck_assert_ptr_null(fake_current); /* the profile is done with it */
}

static void fake_answer_token(const char *access, const char *refresh, usec_t expires_in, usec_t sent) {
        AadToken t = {
                .access_token = secret_new_string(access),
                .refresh_token = refresh ? secret_new_string(refresh) : NULL,
                .expires_in = expires_in,
        };
        AadError e = {};

        fake_answer(&(RefreshAnswer) { .outcome = AAD_OK, .token = &t, .error = &e, .status = 200, .sent = sent });
        aad_token_clear(&t);
}

static void fake_answer_error(AadOutcome o, long status, const char *error, const char *suberror, const char *claims) {
        AadError e = { .error = (char *) error, .suberror = (char *) suberror, .claims = (char *) claims };

        fake_answer(&(RefreshAnswer) { .outcome = o, .error = &e, .status = status });
}

/* ---- a profile in a scratch home ------------------------------------------------------------ */

static sd_event *event;
static Config *config;
static ProfileContext context;
static Profile *profile;
static char *token_path;
static char *state_dir;

static void on_done(Profile *p, int result, void *userdata) {
        int *r = userdata;
        *r = result;
}

#define PENDING 12345

/* Run the loop until *result is answered (or the save/write in flight is done). */
static void run_until_answered(int *result) {
        usec_t deadline = now_monotonic() + 10 * USEC_PER_SEC;

        while (*result == PENDING && now_monotonic() < deadline)
                ck_assert_int_ge(sd_event_run(event, 10 * USEC_PER_MSEC), 0);
        ck_assert_int_ne(*result, PENDING);
}

static void run_a_while(void) {
        usec_t deadline = now_monotonic() + 300 * USEC_PER_MSEC;

        while (now_monotonic() < deadline)
                ck_assert_int_ge(sd_event_run(event, 10 * USEC_PER_MSEC), 0);
}

/* A state file as a sign-in leaves it: refresh token rt-saved, an access token valid for
 * valid_for from the stand-in now (0: expired an hour ago). */
static void save_sign_in(usec_t valid_for) {
        const ProfileConfig *pc = config_default_profile(config);
        ProfileIdentity id = profile_config_identity(pc);
        usec_t now = fake_now(CLOCK_REALTIME);
        StoredProfile s = {
                .tenant = (char *) id.tenant,
                .client_id = (char *) id.client_id,
                .authority_host = (char *) id.authority_host,
                .server_id = (char *) id.server_id,
                .auth = (char *) id.auth,
                .refresh_token = secret_new_string("rt-saved"),
                .access_token = secret_new_string("at-saved"),
                .obtained = valid_for ? now - USEC_PER_MINUTE : now - 2 * USEC_PER_HOUR,
                .expires_on = valid_for ? now + valid_for : now - USEC_PER_HOUR,
        };

        ck_assert_int_eq(store_save(state_dir, "default", &s), 0);
        secret_free(s.refresh_token);
        secret_free(s.access_token);
}

static void setup(void) {
        _cleanup_free_ char *text = NULL;
        ConfigErrors errors = {};
        ConfigEnv env;

        testlib_scratch_setup();
        fake_offset = 10 * 24 * USEC_PER_HOUR;
        fake_current = NULL;
        fake_starts = 0;
        fake_sent_token[0] = 0;
        token_path = testlib_path(testlib_scratch, "token");
        state_dir = testlib_path(testlib_scratch, "state");
        ck_assert_int_eq(mkdir(state_dir, 0700), 0);
        ck_assert_int_ge(asprintf(&text, "[profile default]\ntenant = %s\ntoken_file = %s\n", TENANT, token_path), 0);
        env = (ConfigEnv) { .home = testlib_scratch, .refresh_floor = 30 * USEC_PER_SEC };
        ck_assert_int_eq(config_parse("test.ini", text, strlen(text), &env, &config, &errors), 0);
        ck_assert_int_ge(sd_event_new(&event), 0);
        context = (ProfileContext) {
                .sources = { .event = event, .http_timeout = 10 * USEC_PER_SEC },
                .refresh_floor = 30 * USEC_PER_SEC,
                .state_dir = state_dir,
                .refresh_source = &fake_source,
                .now = fake_now,
        };
        profile = NULL;
}

static void teardown(void) {
        profile = profile_free(profile);
        ck_assert_ptr_null(fake_current); /* freeing the profile stops its refresh */
        event = sd_event_unref(event);
        config = config_free(config);
        free(token_path);
        free(state_dir);
        testlib_scratch_teardown();
}

static void run_until_loaded(void) {
        usec_t deadline = now_monotonic() + 10 * USEC_PER_SEC;

        while (profile->loading && now_monotonic() < deadline)
                ck_assert_int_ge(sd_event_run(event, 10 * USEC_PER_MSEC), 0);
        ck_assert(!profile->loading);
}

/* Start the profile; its saved sign-in is read in the store's worker, off the loop. */
static void start_profile(void) {
        ck_assert_int_eq(profile_new(&context, config_default_profile(config), &profile), 0);
        ck_assert_int_eq(profile_start(profile), 0);
        ck_assert(profile->loading); /* nothing read on the loop */
        run_until_loaded();
}

static ProfileSnapshot snapshot(void) {
        ProfileSnapshot s;

        profile_snapshot(profile, &s);
        return s;
}

static char *saved_refresh_token(void) {
        StoredProfile s = {};
        char *rt;
        int r = store_load(state_dir, "default", &s);

        if (r < 0)
                return NULL;
        rt = strdup(secret_reveal(s.refresh_token));
        stored_profile_clear(&s);
        return rt;
}

/* ---- decisions ------------------------------------------------------------------------------- */

START_TEST(test_expired_sign_in_refreshes_at_start) {
        save_sign_in(0);
        start_profile();
        ck_assert_uint_eq(fake_starts, 1);
        ck_assert_str_eq(fake_sent_token, "rt-saved");
        ck_assert_int_eq(profile_state(profile), PROFILE_REFRESHING);
}
END_TEST

START_TEST(test_valid_sign_in_waits_for_its_time) {
        save_sign_in(USEC_PER_HOUR);
        start_profile();
        ck_assert_uint_eq(fake_starts, 0);
        ck_assert_int_eq(profile_state(profile), PROFILE_VALID);
        /* the next refresh is scheduled before expiry, after now */
        ck_assert_uint_gt(snapshot().next_refresh, fake_now(CLOCK_REALTIME));
        ck_assert_uint_lt(snapshot().next_refresh, fake_now(CLOCK_REALTIME) + USEC_PER_HOUR);
}
END_TEST

START_TEST(test_no_sign_in_needs_a_person) {
        int result = PENDING;

        start_profile();
        ck_assert_uint_eq(fake_starts, 0);
        ck_assert_int_eq(profile_state(profile), PROFILE_LOGIN_REQUIRED);
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        run_until_answered(&result);
        ck_assert_int_eq(result, -ENOKEY);
        ck_assert_uint_eq(fake_starts, 0);
}
END_TEST

START_TEST(test_success_takes_the_token_saves_and_writes) {
        _cleanup_free_ char *rt = NULL, *written = NULL;
        usec_t now = fake_now(CLOCK_REALTIME);
        int result = PENDING;
        size_t len;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer_token("at-new", "rt-new", USEC_PER_HOUR, now);
        run_until_answered(&result);

        ck_assert_int_eq(result, 0);
        ck_assert_int_eq(profile_state(profile), PROFILE_VALID);
        ck_assert_uint_eq(snapshot().expires_on, now + USEC_PER_HOUR);
        ck_assert_ptr_null(snapshot().last_error);
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_OK], 1);
        /* the next refresh before expiry, not before the floor */
        ck_assert_uint_ge(snapshot().next_refresh, now + 30 * USEC_PER_SEC);
        ck_assert_uint_lt(snapshot().next_refresh, now + USEC_PER_HOUR);
        /* the rotated refresh token is on disk, the access token in the output (the answer
         * waited for both) */
        rt = saved_refresh_token();
        ck_assert_str_eq(rt, "rt-new");
        ck_assert_int_eq(read_file_full(token_path, 4096, &written, &len), 0);
        ck_assert_ptr_nonnull(strstr(written, "at-new"));
        /* the next refresh sends the new refresh token */
        ck_assert_uint_eq(fake_starts, 1);
}
END_TEST

START_TEST(test_transient_error_retries_with_backoff) {
        usec_t now;
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        now = fake_now(CLOCK_REALTIME);
        fake_answer(&(RefreshAnswer) { .result = -ECONNREFUSED, .transport_error = "connection refused" });
        run_until_answered(&result);

        ck_assert_int_eq(result, -EIO);
        ck_assert_int_eq(profile_state(profile), PROFILE_EXPIRED);
        ck_assert_ptr_nonnull(strstr(snapshot().last_error, "connection refused"));
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_TRANSIENT], 1);
        /* retry 1: between 0.5 s and 1 s */
        ck_assert_uint_ge(snapshot().next_refresh, now + 500 * USEC_PER_MSEC);
        ck_assert_uint_le(snapshot().next_refresh, fake_now(CLOCK_REALTIME) + USEC_PER_SEC);
        /* the sign-in is kept: a transient failure needs no person */
        _cleanup_free_ char *rt = saved_refresh_token();
        ck_assert_str_eq(rt, "rt-saved");

        /* retry 2 backs off further: between 1 s and 2 s */
        profile_refresh_start(profile);
        ck_assert_uint_eq(fake_starts, 2);
        now = fake_now(CLOCK_REALTIME);
        fake_answer_error(AAD_TRANSIENT, 503, "temporarily_unavailable", NULL, NULL);
        ck_assert_uint_ge(snapshot().next_refresh, now + USEC_PER_SEC);
        ck_assert_uint_le(snapshot().next_refresh, fake_now(CLOCK_REALTIME) + 2 * USEC_PER_SEC);
        ck_assert_ptr_nonnull(strstr(snapshot().last_error, "HTTP 503"));
}
END_TEST

START_TEST(test_invalid_grant_needs_a_person) {
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer_error(AAD_NEEDS_LOGIN, 400, "invalid_grant", NULL, NULL);
        run_until_answered(&result);

        ck_assert_int_eq(result, -ENOKEY);
        ck_assert_int_eq(profile_state(profile), PROFILE_LOGIN_REQUIRED);
        ck_assert_uint_eq(snapshot().next_refresh, 0); /* no retry: only a person can help */
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_LOGIN_REQUIRED], 1);
        run_a_while();
        ck_assert_ptr_null(saved_refresh_token()); /* the dead sign-in is removed */
        ck_assert_uint_eq(fake_starts, 1);
}
END_TEST

START_TEST(test_interaction_required_keeps_the_claims_challenge) {
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer_error(AAD_NEEDS_LOGIN, 400, "interaction_required", "basic_action", "{\"access_token\":{}}");
        run_until_answered(&result);

        ck_assert_int_eq(result, -ENOKEY);
        ck_assert_int_eq(profile_state(profile), PROFILE_LOGIN_REQUIRED);
        ck_assert_ptr_nonnull(strstr(snapshot().last_error, "claims challenge"));
}
END_TEST

START_TEST(test_message_only_is_no_case_for_a_sign_in) {
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer_error(AAD_NEEDS_LOGIN, 400, "interaction_required", "message_only", NULL);
        run_until_answered(&result);

        ck_assert_int_eq(result, -EBADR);
        ck_assert_int_eq(profile_state(profile), PROFILE_ERROR);
        ck_assert_uint_eq(snapshot().next_refresh, 0);
}
END_TEST

START_TEST(test_configuration_error_stops_retrying) {
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer_error(AAD_CONFIG_ERROR, 400, "invalid_client", NULL, NULL);
        run_until_answered(&result);

        ck_assert_int_eq(result, -EBADR);
        ck_assert_int_eq(profile_state(profile), PROFILE_ERROR);
        ck_assert_uint_eq(snapshot().next_refresh, 0);
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_CONFIG_ERROR], 1);
        _cleanup_free_ char *rt = saved_refresh_token();
        ck_assert_str_eq(rt, "rt-saved"); /* the sign-in itself is fine */
}
END_TEST

START_TEST(test_check_refreshes_a_short_token_once_without_a_second_try) {
        int result = PENDING;
        usec_t now;

        save_sign_in(2 * USEC_PER_MINUTE);
        start_profile();
        ck_assert_uint_eq(fake_starts, 0);
        ck_assert_int_eq(profile_check(profile, 5 * USEC_PER_MINUTE, on_done, &result, NULL), 0);
        ck_assert_uint_eq(fake_starts, 1);
        /* a person's check is one request whose outcome they see: no second request */
        ck_assert_uint_eq(fake_current->time_left, USEC_INFINITY);
        now = fake_now(CLOCK_REALTIME);
        fake_answer_token("at-new", "rt-new", USEC_PER_HOUR, now);
        run_until_answered(&result);
        ck_assert_int_eq(result, 0);
}
END_TEST

START_TEST(test_check_of_a_long_token_answers_at_once) {
        int result = PENDING;

        save_sign_in(USEC_PER_HOUR);
        start_profile();
        run_a_while(); /* the outputs written at start */
        ck_assert_int_eq(profile_check(profile, 5 * USEC_PER_MINUTE, on_done, &result, NULL), 0);
        run_until_answered(&result);
        ck_assert_int_eq(result, 0);
        ck_assert_uint_eq(fake_starts, 0);
}
END_TEST

START_TEST(test_scheduled_refresh_near_expiry_may_try_twice) {
        save_sign_in(3 * USEC_PER_SEC);
        start_profile();
        /* the refresh the profile starts on its own gets the token's time left, for a second try */
        profile_refresh_start(profile);
        ck_assert_uint_eq(fake_starts, 1);
        ck_assert_uint_le(fake_current->time_left, 3 * USEC_PER_SEC);
        ck_assert_uint_gt(fake_current->time_left, 0);
}
END_TEST

START_TEST(test_answer_about_a_replaced_token_is_the_replacement) {
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        ck_assert_int_eq(profile_refresh(profile, on_done, &result, NULL), 0);
        fake_answer(&(RefreshAnswer) { .result = -ESTALE, .superseded = true });
        run_until_answered(&result);
        /* no token replaced it here: the refresh failed, and nothing was counted as an answer */
        ck_assert_int_eq(result, -EIO);
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_TRANSIENT], 0);
        ck_assert_uint_eq(snapshot().refreshes[REFRESH_OK], 0);
}
END_TEST

START_TEST(test_failed_save_fails_check_and_keeps_the_old_token) {
        _cleanup_free_ char *moved = testlib_path(testlib_scratch, "state-moved");
        _cleanup_free_ char *rt = NULL;
        int result = PENDING;

        save_sign_in(0);
        start_profile();
        /* The state directory turns into a file: every save fails (root ignores modes). */
        ck_assert_int_eq(rename(state_dir, moved), 0);
        testlib_write_file(state_dir, "x", 1);
        ck_assert_int_eq(profile_check(profile, 5 * USEC_PER_MINUTE, on_done, &result, NULL), 0);
        fake_answer_token("at-new", "rt-new", USEC_PER_HOUR, fake_now(CLOCK_REALTIME));
        run_until_answered(&result);

        /* a token and its output, but a restart now would lose the sign-in: check says so */
        ck_assert_uint_eq(snapshot().n_outputs, 1);
        ck_assert(snapshot().outputs[0].ok);
        ck_assert_int_eq(result, -EREMOTEIO);
        ck_assert_int_eq(profile_state(profile), PROFILE_VALID);
        ck_assert(snapshot().store_attempted);
        ck_assert(!snapshot().store_ok);
        ck_assert_ptr_nonnull(snapshot().store_error);

        ck_assert_int_eq(unlink(state_dir), 0);
        ck_assert_int_eq(rename(moved, state_dir), 0);
        rt = saved_refresh_token();
        ck_assert_str_eq(rt, "rt-saved"); /* the one on disk is still the one before */
}
END_TEST

START_TEST(test_requests_during_the_load_wait_for_it) {
        int refreshed = PENDING, checked = PENDING;

        save_sign_in(USEC_PER_HOUR);
        ck_assert_int_eq(profile_new(&context, config_default_profile(config), &profile), 0);
        ck_assert_int_eq(profile_start(profile), 0);
        /* asked before the sign-in is read: no "login required", and no refresh yet */
        ck_assert_int_eq(profile_refresh(profile, on_done, &refreshed, NULL), 0);
        ck_assert_int_eq(profile_check(profile, 5 * USEC_PER_MINUTE, on_done, &checked, NULL), 0);
        ck_assert_uint_eq(fake_starts, 0);
        run_until_loaded();
        /* then the refresh asked for goes out with the saved refresh token */
        ck_assert_uint_eq(fake_starts, 1);
        ck_assert_str_eq(fake_sent_token, "rt-saved");
        fake_answer_token("at-new", "rt-new", USEC_PER_HOUR, fake_now(CLOCK_REALTIME));
        run_until_answered(&refreshed);
        run_until_answered(&checked);
        ck_assert_int_eq(refreshed, 0);
        ck_assert_int_eq(checked, 0);
}
END_TEST

static Suite *profile_suite(void) {
        Suite *s = suite_create("profile");
        TCase *tc = tcase_create("decisions");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_expired_sign_in_refreshes_at_start);
        tcase_add_test(tc, test_valid_sign_in_waits_for_its_time);
        tcase_add_test(tc, test_no_sign_in_needs_a_person);
        tcase_add_test(tc, test_success_takes_the_token_saves_and_writes);
        tcase_add_test(tc, test_transient_error_retries_with_backoff);
        tcase_add_test(tc, test_invalid_grant_needs_a_person);
        tcase_add_test(tc, test_interaction_required_keeps_the_claims_challenge);
        tcase_add_test(tc, test_message_only_is_no_case_for_a_sign_in);
        tcase_add_test(tc, test_configuration_error_stops_retrying);
        tcase_add_test(tc, test_check_refreshes_a_short_token_once_without_a_second_try);
        tcase_add_test(tc, test_check_of_a_long_token_answers_at_once);
        tcase_add_test(tc, test_scheduled_refresh_near_expiry_may_try_twice);
        tcase_add_test(tc, test_answer_about_a_replaced_token_is_the_replacement);
        tcase_add_test(tc, test_failed_save_fails_check_and_keeps_the_old_token);
        tcase_add_test(tc, test_requests_during_the_load_wait_for_it);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(profile_suite());
}
