/* Fuzzes the socket protocol: request parsing, and the answers built from untrusted strings. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "shared/protocol.h"

/* Every answer is exactly one line of valid JSON: an object with a boolean "ok". */
static json_t *check_answer_line(const char *line) {
        json_error_t error;
        json_t *o;
        size_t n;

        FUZZ_CHECK(line);
        n = strlen(line);
        FUZZ_CHECK(n >= 2 && line[n - 1] == '\n');
        FUZZ_CHECK(memchr(line, '\n', n - 1) == NULL);
        o = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES, &error);
        FUZZ_CHECK(o);
        FUZZ_CHECK(json_is_object(o));
        FUZZ_CHECK(json_is_boolean(json_object_get(o, "ok")));
        return o;
}

static void check_request(const uint8_t *data, size_t size) {
        Request req = {};
        ErrorCode code = _ERR_INVALID;
        const char *message = NULL;
        int r;

        r = protocol_parse_request((const char *) data, size, &req, &code, &message);
        if (r >= 0) {
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(req.op >= 0 && req.op < _OP_MAX);
                FUZZ_CHECK(request_op_to_string(req.op));
                FUZZ_CHECK(!req.profile || profile_name_is_valid(req.profile));
                FUZZ_CHECK(!req.profile || strlen(req.profile) <= PROTOCOL_MAX_PROFILE_NAME);
                FUZZ_CHECK(req.min_valid <= (usec_t) PROTOCOL_MAX_MIN_VALID * USEC_PER_SEC);
                FUZZ_CHECK(req.min_valid % USEC_PER_SEC == 0);
                FUZZ_CHECK(request_op_from_string(request_op_to_string(req.op)) == req.op);
                request_clear(&req);
                return;
        }

        /* A refusal names a stable code and a static message that never echoes the input. */
        FUZZ_CHECK(code >= 0 && code < _ERR_MAX);
        FUZZ_CHECK(error_code_to_string(code));
        FUZZ_CHECK(error_code_from_string(error_code_to_string(code)) == code);
        FUZZ_CHECK(message && *message);
        FUZZ_CHECK(!req.profile);

        char *answer = protocol_error_answer(code, message);
        json_t *o = check_answer_line(answer);
        FUZZ_CHECK(json_is_false(json_object_get(o, "ok")));
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(o, "error")), error_code_to_string(code)) == 0);
        json_decref(o);
        free(answer);
}

/* Paths, accounts and error texts are not ours: whatever bytes they hold, answers stay JSON.
 * One builder per input (picked by its length) keeps the executions per second up. */
static void check_answer(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        char *answer;
        json_t *o;
        OutputSnapshot outputs[] = {
                { .path = s, .kind = "token_file", .attempted = true, .ok = false, .error = s, .last_attempt = 1 },
                { .path = s, .kind = "spark_properties" },
        };
        ProfileSnapshot snap = {
                .name = s,
                .state = (ProfileState) (size % _PROFILE_STATE_MAX),
                .expires_on = (usec_t) size * USEC_PER_SEC,
                .last_error = s,
                .account = s,
                .tenant = s,
                .device_message = s,
                .outputs = outputs,
                .n_outputs = ELEMENTSOF(outputs),
        };

        switch (size % 5) {
        case 0:
                answer = protocol_status_answer(&snap, 7 * USEC_PER_SEC);
                o = check_answer_line(answer);
                FUZZ_CHECK(json_is_true(json_object_get(o, "ok")));
                FUZZ_CHECK(json_array_size(json_object_get(o, "outputs")) == ELEMENTSOF(outputs));
                break;
        case 1:
                answer = protocol_profiles_answer(&snap, 1);
                o = check_answer_line(answer);
                break;
        case 2:
                answer = protocol_login_started_answer(s, s, s, 900 * USEC_PER_SEC);
                o = check_answer_line(answer);
                break;
        case 3:
                answer = protocol_error_answer((ErrorCode) (size % _ERR_MAX), s);
                o = check_answer_line(answer);
                FUZZ_CHECK(json_is_false(json_object_get(o, "ok")));
                break;
        default: {
                /* Escaped by hand, not by jansson: an ASCII token must come back byte for byte. */
                bool ascii = true;

                for (const char *p = s; *p; p++)
                        if ((unsigned char) *p >= 0x80)
                                ascii = false;
                answer = protocol_token_answer(s, (usec_t) size * USEC_PER_SEC);
                o = check_answer_line(answer);
                if (ascii)
                        FUZZ_CHECK(strcmp(json_string_value(json_object_get(o, "access_token")), s) == 0);
                break;
        }
        }

        json_decref(o);
        free(answer);
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The server never hands over more than one line of at most PROTOCOL_MAX_REQUEST. */
        if (size > PROTOCOL_MAX_REQUEST)
                return 0;

        check_request(data, size);
        check_answer(data, size);
        return 0;
}
