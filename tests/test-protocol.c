/* Tests for the socket protocol: request parsing, error codes, and the shape of every answer. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secret.h"
#include "shared/config.h"
#include "shared/protocol.h"
#include "testlib.h"

static int parse(const char *line, Request *req, ErrorCode *code, const char **message) {
        return protocol_parse_request(line, strlen(line), req, code, message);
}

/* Parse must fail with code; the message must be static text that never echoes the input. */
static void assert_bad_len(const char *line, size_t len, ErrorCode want) {
        Request req = {};
        ErrorCode code = _ERR_MAX;
        const char *message = NULL;
        int r = protocol_parse_request(line, len, &req, &code, &message);

        ck_assert_msg(r < 0, "accepted: %.*s", (int) MIN(len, (size_t) 80), line);
        ck_assert_int_eq(code, want);
        ck_assert_ptr_nonnull(message);
        ck_assert(strlen(message) > 10);
        ck_assert_ptr_null(strstr(message, "EVIL"));
        ck_assert_ptr_null(req.profile);
}

static void assert_bad(const char *line, ErrorCode want) {
        assert_bad_len(line, strlen(line), want);
}

static json_t *load_answer(const char *line) {
        json_error_t error;
        json_t *j;
        size_t n;

        ck_assert_ptr_nonnull(line);
        n = strlen(line);
        ck_assert_uint_gt(n, 1);
        ck_assert_int_eq(line[n - 1], '\n');
        ck_assert_ptr_null(memchr(line, '\n', n - 1)); /* exactly one line */
        j = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES, &error);
        ck_assert_msg(j != NULL, "answer is not JSON: %s (%s)", line, error.text);
        ck_assert(json_is_object(j));
        ck_assert(json_is_boolean(json_object_get(j, "ok")));
        return j;
}

START_TEST(test_ops_parse) {
        for (RequestOp op = 0; op < _OP_MAX; op++) {
                char line[128];
                Request req = {};

                snprintf(line, sizeof line, "{\"op\":\"%s\"}", request_op_to_string(op));
                ck_assert_int_eq(parse(line, &req, NULL, NULL), 0);
                ck_assert_int_eq(req.op, op);
                ck_assert_ptr_null(req.profile);
                ck_assert_uint_eq(req.min_valid, 0);
                ck_assert_int_eq(request_op_from_string(request_op_to_string(op)), op);
                request_clear(&req);
        }
        ck_assert_int_lt(request_op_from_string("STATUS"), 0);
        ck_assert_int_lt(request_op_from_string(""), 0);
        ck_assert_int_lt(request_op_from_string(NULL), 0);
        ck_assert_ptr_null(request_op_to_string(_OP_MAX));
        ck_assert_ptr_null(request_op_to_string(-1));
}
END_TEST

START_TEST(test_fields_parse) {
        Request req = {};

        ck_assert_int_eq(parse("{\"op\":\"check\",\"profile\":\"prod-west.2_x\",\"min_valid\":900}", &req, NULL, NULL),
                         0);
        ck_assert_int_eq(req.op, OP_CHECK);
        ck_assert_str_eq(req.profile, "prod-west.2_x");
        ck_assert_uint_eq(req.min_valid, 900 * USEC_PER_SEC);
        request_clear(&req);
        ck_assert_ptr_null(req.profile);

        /* Whitespace around, key order, null profile, unknown keys (ignored), zero min_valid. */
        ck_assert_int_eq(
                parse("  { \"min_valid\" : 0 , \"profile\": null, \"x\": [1, {\"y\": []}], \"op\" : \"status\" }\t",
                      &req, NULL, NULL),
                0);
        ck_assert_int_eq(req.op, OP_STATUS);
        ck_assert_ptr_null(req.profile);
        ck_assert_uint_eq(req.min_valid, 0);
        request_clear(&req);

        /* The largest min_valid allowed. */
        ck_assert_int_eq(parse("{\"op\":\"check\",\"min_valid\":31622400}", &req, NULL, NULL), 0);
        ck_assert_uint_eq(req.min_valid, 31622400ULL * USEC_PER_SEC);
        request_clear(&req);

        /* Not NUL-terminated: only len bytes count. */
        ck_assert_int_eq(protocol_parse_request("{\"op\":\"token\"}garbage", 14, &req, NULL, NULL), 0);
        ck_assert_int_eq(req.op, OP_TOKEN);
        request_clear(&req);

        /* A 255-character name is fine. */
        {
                char line[400], name[256];
                memset(name, 'a', 255);
                name[255] = 0;
                snprintf(line, sizeof line, "{\"op\":\"status\",\"profile\":\"%s\"}", name);
                ck_assert_int_eq(parse(line, &req, NULL, NULL), 0);
                ck_assert_str_eq(req.profile, name);
                request_clear(&req);
        }
}
END_TEST

START_TEST(test_login_method) {
        Request req = {};

        ck_assert_int_eq(parse("{\"op\":\"login\"}", &req, NULL, NULL), 0);
        ck_assert_int_eq(req.login_method, -1);
        request_clear(&req);
        ck_assert_int_eq(parse("{\"op\":\"login\",\"method\":\"browser\"}", &req, NULL, NULL), 0);
        ck_assert_int_eq(req.login_method, AUTH_BROWSER);
        request_clear(&req);
        ck_assert_int_eq(parse("{\"op\":\"login\",\"method\":\"device_code\"}", &req, NULL, NULL), 0);
        ck_assert_int_eq(req.login_method, AUTH_DEVICE_CODE);
        request_clear(&req);
        assert_bad("{\"op\":\"login\",\"method\":\"password\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"login\",\"method\":1}", ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_browser_login_answer) {
        _cleanup_free_ char *line = protocol_login_started_answer("Open https://x/authorize?a=b",
                                                                  "https://x/authorize?a=b", NULL, 600 * USEC_PER_SEC);
        json_t *j = load_answer(line);

        ck_assert_str_eq(json_string_value(json_object_get(j, "authorize_url")), "https://x/authorize?a=b");
        ck_assert(json_is_null(json_object_get(j, "user_code")) || !json_object_get(j, "user_code"));
        json_decref(j);
        free(line);
        line = protocol_login_started_answer("m", "https://microsoft.com/devicelogin", "ABC", 900 * USEC_PER_SEC);
        j = load_answer(line);
        ck_assert_ptr_null(json_object_get(j, "authorize_url"));
        json_decref(j);
}
END_TEST

START_TEST(test_bad_requests) {
        assert_bad("", ERR_BAD_REQUEST);
        assert_bad("   ", ERR_BAD_REQUEST);
        assert_bad("EVIL", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\"", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\"}{\"op\":\"status\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",}", ERR_BAD_REQUEST);
        assert_bad("{'op':'status'}", ERR_BAD_REQUEST);
        assert_bad("[\"op\",\"status\"]", ERR_BAD_REQUEST);
        assert_bad("\"status\"", ERR_BAD_REQUEST);
        assert_bad("42", ERR_BAD_REQUEST);
        assert_bad("null", ERR_BAD_REQUEST);
        assert_bad("{}", ERR_BAD_REQUEST);
        assert_bad("{\"profile\":\"default\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":null}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":1}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":[\"status\"]}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":{\"EVIL\":1}}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"op\":\"token\"}", ERR_BAD_REQUEST); /* duplicate keys */

        assert_bad("{\"op\":\"EVIL\"}", ERR_UNKNOWN_OP);
        assert_bad("{\"op\":\"\"}", ERR_UNKNOWN_OP);
        assert_bad("{\"op\":\"Status\"}", ERR_UNKNOWN_OP);
        assert_bad("{\"op\":\"status \"}", ERR_UNKNOWN_OP);

        assert_bad("{\"op\":\"status\",\"profile\":\"\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":\"EVIL one\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":\"../EVIL\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":\"EVIL\\n\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":\"EVIL\\u0000x\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":\"\xc3\xa9t\xc3\xa9\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":1}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":[\"default\"]}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"profile\":true}", ERR_BAD_REQUEST);
        {
                char line[400], name[257];
                memset(name, 'a', 256);
                name[256] = 0;
                snprintf(line, sizeof line, "{\"op\":\"status\",\"profile\":\"%s\"}", name);
                assert_bad(line, ERR_BAD_REQUEST);
        }

        assert_bad("{\"op\":\"check\",\"min_valid\":-1}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":1.5}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":60.0}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":\"15m\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":\"900\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":true}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":31622401}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":9223372036854775807}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":99999999999999999999999999}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":1e400}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"check\",\"min_valid\":-9223372036854775808}", ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_bad_bytes) {
        static const char nul[] = "{\"op\":\"status\"}\0EVIL";
        static const char nul_inside[] = "{\"op\":\"sta\0tus\"}";

        /* Invalid UTF-8: a lone continuation byte, an overlong form, a surrogate, a truncation. */
        assert_bad("{\"op\":\"status\",\"x\":\"\x80\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"x\":\"\xc0\xaf\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"x\":\"\xed\xa0\x80\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"status\",\"x\":\"\xe2\x82\"}", ERR_BAD_REQUEST);
        assert_bad("{\"op\":\"st\xff\x61tus\"}", ERR_BAD_REQUEST);
        /* A NUL byte inside or after the object. */
        assert_bad_len(nul, sizeof nul - 1, ERR_BAD_REQUEST);
        assert_bad_len(nul_inside, sizeof nul_inside - 1, ERR_BAD_REQUEST);
        /* "\u0000" inside a string. */
        assert_bad("{\"op\":\"status\\u0000\"}", ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_nested_junk) {
        /* Deep nesting must be refused without exhausting the stack. */
        size_t depth = 100000;
        char *line = malloc(depth * 2 + 64);
        char *p = line;
        Request req = {};

        ck_assert_ptr_nonnull(line);
        p = stpcpy(p, "{\"op\":\"status\",\"x\":");
        for (size_t i = 0; i < depth; i++)
                *p++ = '[';
        for (size_t i = 0; i < depth; i++)
                *p++ = ']';
        *p++ = '}';
        *p = 0;
        assert_bad(line, ERR_BAD_REQUEST);

        /* Moderate nesting in an ignored key is fine. */
        p = line;
        p = stpcpy(p, "{\"x\":");
        for (size_t i = 0; i < 100; i++)
                *p++ = '[';
        for (size_t i = 0; i < 100; i++)
                *p++ = ']';
        p = stpcpy(p, ",\"op\":\"version\"}");
        ck_assert_int_eq(parse(line, &req, NULL, NULL), 0);
        ck_assert_int_eq(req.op, OP_VERSION);
        request_clear(&req);
        free(line);
}
END_TEST

START_TEST(test_huge_request) {
        /* The parser itself has no size cap (server.c frames lines); a big valid object parses. */
        size_t n = PROTOCOL_MAX_REQUEST;
        char *line = malloc(n + 1);
        Request req = {};
        size_t off;

        ck_assert_ptr_nonnull(line);
        off = (size_t) sprintf(line, "{\"op\":\"status\",\"pad\":\"");
        memset(line + off, 'x', n - off - 2);
        memcpy(line + n - 2, "\"}", 2);
        line[n] = 0;
        ck_assert_int_eq(protocol_parse_request(line, n, &req, NULL, NULL), 0);
        request_clear(&req);
        free(line);
}
END_TEST

START_TEST(test_error_codes) {
        for (ErrorCode e = 0; e < _ERR_MAX; e++) {
                const char *s = error_code_to_string(e);
                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(error_code_from_string(s), e);
                for (const char *c = s; *c; c++)
                        ck_assert(*c == '_' || (*c >= 'a' && *c <= 'z'));
        }
        ck_assert_int_lt(error_code_from_string("nope"), 0);
        ck_assert_int_lt(error_code_from_string(NULL), 0);
        ck_assert_ptr_null(error_code_to_string(_ERR_MAX));

        /* The stable names the interface promises. */
        ck_assert_str_eq(error_code_to_string(ERR_UNKNOWN_OP), "unknown_op");
        ck_assert_str_eq(error_code_to_string(ERR_UNKNOWN_PROFILE), "unknown_profile");
        ck_assert_str_eq(error_code_to_string(ERR_BAD_REQUEST), "bad_request");
        ck_assert_str_eq(error_code_to_string(ERR_LOGIN_REQUIRED), "login_required");
        ck_assert_str_eq(error_code_to_string(ERR_REFRESH_FAILED), "refresh_failed");
        ck_assert_str_eq(error_code_to_string(ERR_OUTPUT_FAILED), "output_failed");
        ck_assert_str_eq(error_code_to_string(ERR_TIMEOUT), "timeout");
        ck_assert_str_eq(error_code_to_string(ERR_FORBIDDEN), "forbidden");

        ck_assert_int_eq(error_code_exit_status(ERR_LOGIN_REQUIRED), 2);
        ck_assert_int_eq(error_code_exit_status(ERR_LOGIN_DECLINED), 2);
        ck_assert_int_eq(error_code_exit_status(ERR_LOGIN_EXPIRED), 2);
        ck_assert_int_eq(error_code_exit_status(ERR_LOGIN_FAILED), 2);
        ck_assert_int_eq(error_code_exit_status(ERR_FORBIDDEN), 3);
        ck_assert_int_eq(error_code_exit_status(ERR_BAD_REQUEST), 64);
        ck_assert_int_eq(error_code_exit_status(ERR_UNKNOWN_OP), 64);
        ck_assert_int_eq(error_code_exit_status(ERR_UNKNOWN_PROFILE), 64);
        ck_assert_int_eq(error_code_exit_status(ERR_REFRESH_FAILED), 1);
        ck_assert_int_eq(error_code_exit_status(ERR_OUTPUT_FAILED), 1);
        ck_assert_int_eq(error_code_exit_status(ERR_TIMEOUT), 1);
        ck_assert_int_eq(error_code_exit_status(ERR_BUSY), 1);
        ck_assert_int_eq(error_code_exit_status(ERR_CONFIG_ERROR), 1);
        ck_assert_int_eq(error_code_exit_status(ERR_INTERNAL), 1);

        ck_assert_int_eq(error_code_from_errno(-ENOKEY), ERR_LOGIN_REQUIRED);
        ck_assert_int_eq(error_code_from_errno(-EKEYREJECTED), ERR_LOGIN_DECLINED);
        ck_assert_int_eq(error_code_from_errno(-EKEYEXPIRED), ERR_LOGIN_EXPIRED);
        ck_assert_int_eq(error_code_from_errno(-EIO), ERR_REFRESH_FAILED);
        ck_assert_int_eq(error_code_from_errno(-EREMOTEIO), ERR_OUTPUT_FAILED);
        ck_assert_int_eq(error_code_from_errno(-EBADR), ERR_CONFIG_ERROR);
        ck_assert_int_eq(error_code_from_errno(-ETIMEDOUT), ERR_TIMEOUT);
        ck_assert_int_eq(error_code_from_errno(-ECANCELED), ERR_INTERNAL);
        ck_assert_int_eq(error_code_from_errno(-ENOMEM), ERR_INTERNAL);
}
END_TEST

START_TEST(test_states) {
        ck_assert_str_eq(profile_state_to_string(PROFILE_VALID), "valid");
        ck_assert_str_eq(profile_state_to_string(PROFILE_REFRESHING), "refreshing");
        ck_assert_str_eq(profile_state_to_string(PROFILE_LOGIN_REQUIRED), "login_required");
        ck_assert_str_eq(profile_state_to_string(PROFILE_EXPIRED), "expired");
        ck_assert_str_eq(profile_state_to_string(PROFILE_ERROR), "error");
        ck_assert_ptr_null(profile_state_to_string(_PROFILE_STATE_MAX));
}
END_TEST

START_TEST(test_error_answer) {
        char *line = protocol_error_answer(ERR_UNKNOWN_PROFILE, "no profile \"x\"\nsecond line");
        json_t *j = load_answer(line);

        ck_assert(json_is_false(json_object_get(j, "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "unknown_profile");
        ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "no profile \"x\"\nsecond line");
        ck_assert_uint_eq(json_object_size(j), 3);
        json_decref(j);
        free(line);

        /* A message with bytes that are not UTF-8 still makes valid JSON. */
        line = protocol_error_answer(ERR_INTERNAL, "bad \xff byte");
        j = load_answer(line);
        ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "bad \xef\xbf\xbd byte");
        json_decref(j);
        free(line);

        line = protocol_error_answer(ERR_TIMEOUT, NULL);
        j = load_answer(line);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "timeout");
        ck_assert(json_is_string(json_object_get(j, "message")));
        json_decref(j);
        free(line);
}
END_TEST

START_TEST(test_status_answer) {
        usec_t now = 1800000000ULL * USEC_PER_SEC + 123;
        OutputSnapshot outputs[] = {
                { .path = "/home/a/.kube/oauthToken",
                  .kind = "token_file",
                  .attempted = true,
                  .ok = true,
                  .last_attempt = now - 60 * USEC_PER_SEC },
                { .path = "/home/a/spark/spark.properties",
                  .kind = "spark_properties",
                  .attempted = true,
                  .ok = false,
                  .error = "No space left on device",
                  .last_attempt = now - 30 * USEC_PER_SEC },
                { .path = "/home/a/\xfe.properties", .kind = "spark_properties" },
        };
        ProfileSnapshot s = {
                .name = "default",
                .state = PROFILE_VALID,
                .expires_on = now + 2460 * USEC_PER_SEC + 500000,
                .next_refresh = now + 2100 * USEC_PER_SEC,
                .last_refresh = now - 60 * USEC_PER_SEC,
                .account = "alice@contoso.com",
                .tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47",
                .outputs = outputs,
                .n_outputs = ELEMENTSOF(outputs),
        };
        char *line = protocol_status_answer(&s, now);
        json_t *j = load_answer(line), *o;

        ck_assert(json_is_true(json_object_get(j, "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "profile")), "default");
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "valid");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_on")), 1800000000 + 2460);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_in")), 2460);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "next_refresh")), 1800000000 + 2100);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "last_refresh")), 1800000000 - 60);
        ck_assert(json_is_null(json_object_get(j, "last_error")));
        ck_assert(json_is_null(json_object_get(j, "device_message")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "account")), "alice@contoso.com");
        ck_assert_str_eq(json_string_value(json_object_get(j, "tenant")), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        o = json_object_get(j, "outputs");
        ck_assert(json_is_array(o));
        ck_assert_uint_eq(json_array_size(o), 3);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "path")), "/home/a/.kube/oauthToken");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "kind")), "token_file");
        ck_assert(json_is_true(json_object_get(json_array_get(o, 0), "ok")));
        ck_assert(json_is_null(json_object_get(json_array_get(o, 0), "error")));
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(o, 0), "last_write")), 1800000000 - 60);
        ck_assert(json_is_false(json_object_get(json_array_get(o, 1), "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 1), "error")), "No space left on device");
        ck_assert(json_is_null(json_object_get(json_array_get(o, 2), "ok")));
        ck_assert(json_is_null(json_object_get(json_array_get(o, 2), "last_write")));
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 2), "path")),
                         "/home/a/\xef\xbf\xbd.properties");
        json_decref(j);
        free(line);

        /* Nothing known yet: nulls everywhere, an empty output list. */
        s = (ProfileSnapshot) {
                .name = "p",
                .state = PROFILE_LOGIN_REQUIRED,
                .last_error = "invalid_grant: AADSTS70008",
                .device_message = "To sign in, use a web browser to open the page https://x and enter the code ABC"
        };
        line = protocol_status_answer(&s, now);
        j = load_answer(line);
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "login_required");
        ck_assert(json_is_null(json_object_get(j, "expires_on")));
        ck_assert(json_is_null(json_object_get(j, "expires_in")));
        ck_assert(json_is_null(json_object_get(j, "next_refresh")));
        ck_assert(json_is_null(json_object_get(j, "last_refresh")));
        ck_assert(json_is_null(json_object_get(j, "account")));
        ck_assert(json_is_null(json_object_get(j, "tenant")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "last_error")), "invalid_grant: AADSTS70008");
        ck_assert(json_is_string(json_object_get(j, "device_message")));
        ck_assert_uint_eq(json_array_size(json_object_get(j, "outputs")), 0);
        json_decref(j);
        free(line);

        /* An expired token: expires_in is 0, never negative. */
        s = (ProfileSnapshot) { .name = "p", .state = PROFILE_EXPIRED, .expires_on = now - 5 * USEC_PER_SEC };
        line = protocol_status_answer(&s, now);
        j = load_answer(line);
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "expired");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_in")), 0);
        json_decref(j);
        free(line);
}
END_TEST

START_TEST(test_profiles_answer) {
        ProfileSnapshot s[] = {
                { .name = "default",
                  .state = PROFILE_VALID,
                  .expires_on = 1800000000ULL * USEC_PER_SEC,
                  .account = "a@b" },
                { .name = "prod", .state = PROFILE_LOGIN_REQUIRED },
        };
        char *line = protocol_profiles_answer(s, ELEMENTSOF(s));
        json_t *j = load_answer(line), *a;

        ck_assert(json_is_true(json_object_get(j, "ok")));
        a = json_object_get(j, "profiles");
        ck_assert_uint_eq(json_array_size(a), 2);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "name")), "default");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "state")), "valid");
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(a, 0), "expires_on")), 1800000000);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 1), "name")), "prod");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 1), "state")), "login_required");
        ck_assert(json_is_null(json_object_get(json_array_get(a, 1), "expires_on")));
        json_decref(j);
        free(line);

        line = protocol_profiles_answer(NULL, 0);
        j = load_answer(line);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "profiles")), 0);
        json_decref(j);
        free(line);
}
END_TEST

START_TEST(test_token_answer) {
        const char *token = "eyJ0eXAiOiJKV1QifQ.eyJ1cG4iOiJhQGIifQ.c2ln-_";
        char *line = protocol_token_answer(token, 1800000000ULL * USEC_PER_SEC + 5);
        json_t *j = load_answer(line);

        ck_assert(json_is_true(json_object_get(j, "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "access_token")), token);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_on")), 1800000000);
        ck_assert_uint_eq(json_object_size(j), 3);
        json_decref(j);
        erase_and_free(line, strlen(line));

        /* Characters JSON must escape survive the round trip. */
        line = protocol_token_answer("a\"b\\c\x01/d", 0);
        j = load_answer(line);
        ck_assert_str_eq(json_string_value(json_object_get(j, "access_token")), "a\"b\\c\x01/d");
        ck_assert(json_is_null(json_object_get(j, "expires_on")));
        json_decref(j);
        erase_and_free(line, strlen(line));

        ck_assert_ptr_null(protocol_token_answer(NULL, 0));
}
END_TEST

START_TEST(test_other_answers) {
        char *line = protocol_version_answer("0.1.0");
        json_t *j = load_answer(line);

        ck_assert(json_is_true(json_object_get(j, "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "0.1.0");
        json_decref(j);
        free(line);

        line = protocol_ok_answer();
        j = load_answer(line);
        ck_assert(json_is_true(json_object_get(j, "ok")));
        ck_assert_uint_eq(json_object_size(j), 1);
        json_decref(j);
        free(line);

        line = protocol_login_started_answer("To sign in, open https://microsoft.com/devicelogin and enter ABCD-EFGH.",
                                             "https://microsoft.com/devicelogin", "ABCD-EFGH", 900 * USEC_PER_SEC);
        j = load_answer(line);
        ck_assert(json_is_true(json_object_get(j, "ok")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "device_message")),
                         "To sign in, open https://microsoft.com/devicelogin and enter ABCD-EFGH.");
        ck_assert_str_eq(json_string_value(json_object_get(j, "verification_uri")),
                         "https://microsoft.com/devicelogin");
        ck_assert_str_eq(json_string_value(json_object_get(j, "user_code")), "ABCD-EFGH");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_in")), 900);
        json_decref(j);
        free(line);
}
END_TEST

static Suite *protocol_suite(void) {
        Suite *s = suite_create("protocol");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_login_method);
        tcase_add_test(tc, test_browser_login_answer);
        tcase_add_test(tc, test_ops_parse);
        tcase_add_test(tc, test_fields_parse);
        tcase_add_test(tc, test_bad_requests);
        tcase_add_test(tc, test_bad_bytes);
        tcase_add_test(tc, test_nested_junk);
        tcase_add_test(tc, test_huge_request);
        tcase_add_test(tc, test_error_codes);
        tcase_add_test(tc, test_states);
        tcase_add_test(tc, test_error_answer);
        tcase_add_test(tc, test_status_answer);
        tcase_add_test(tc, test_profiles_answer);
        tcase_add_test(tc, test_token_answer);
        tcase_add_test(tc, test_other_answers);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(protocol_suite());
}
