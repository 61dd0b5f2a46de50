/* Tests for the intrusive list: order, removal from every position, an item on two lists. */
#include <stdbool.h>
#include <stddef.h>

#include "base/list.h"
#include "base/macro.h"
#include "testlib.h"

typedef struct Item Item;
struct Item {
        int value;
        LIST_FIELDS(Item, a);
        LIST_FIELDS(Item, b);
};

/* The values of list a (or b) in order, checking the back links on the way. */
static size_t collect(Item *head, bool use_b, int *out, size_t max) {
        Item *prev = NULL;
        size_t n = 0;

        for (Item *i = head; i; i = use_b ? i->b_next : i->a_next) {
                ck_assert_ptr_eq((use_b ? i->b_prev : i->a_prev), prev);
                ck_assert_uint_lt(n, max);
                out[n++] = i->value;
                prev = i;
        }
        return n;
}

START_TEST(test_prepend_append_order) {
        Item items[4] = { { .value = 0 }, { .value = 1 }, { .value = 2 }, { .value = 3 } };
        LIST_HEAD(Item, head) = NULL;
        int v[4];

        LIST_APPEND(a, head, &items[1]);
        LIST_APPEND(a, head, &items[2]);
        LIST_PREPEND(a, head, &items[0]);
        LIST_APPEND(a, head, &items[3]);
        ck_assert_uint_eq(collect(head, false, v, 4), 4);
        for (int k = 0; k < 4; k++)
                ck_assert_int_eq(v[k], k);
}
END_TEST

START_TEST(test_remove_every_position) {
        for (int gone = 0; gone < 3; gone++) {
                Item items[3] = { { .value = 0 }, { .value = 1 }, { .value = 2 } };
                LIST_HEAD(Item, head) = NULL;
                int v[3], k = 0;

                for (int j = 0; j < 3; j++)
                        LIST_APPEND(a, head, &items[j]);
                LIST_REMOVE(a, head, &items[gone]);
                ck_assert_ptr_null(items[gone].a_next);
                ck_assert_ptr_null(items[gone].a_prev);
                ck_assert_uint_eq(collect(head, false, v, 3), 2);
                for (int j = 0; j < 3; j++)
                        if (j != gone)
                                ck_assert_int_eq(v[k++], j);
        }
}
END_TEST

START_TEST(test_remove_last_empties) {
        Item item = { .value = 7 };
        LIST_HEAD(Item, head) = NULL;

        LIST_PREPEND(a, head, &item);
        ck_assert_ptr_eq(head, &item);
        LIST_REMOVE(a, head, &item);
        ck_assert_ptr_null(head);
}
END_TEST

START_TEST(test_two_lists_one_item) {
        Item items[3] = { { .value = 0 }, { .value = 1 }, { .value = 2 } };
        LIST_HEAD(Item, ha) = NULL;
        LIST_HEAD(Item, hb) = NULL;
        int v[3];

        for (int j = 0; j < 3; j++) {
                LIST_APPEND(a, ha, &items[j]);
                LIST_PREPEND(b, hb, &items[j]);
        }
        LIST_REMOVE(b, hb, &items[1]);
        ck_assert_uint_eq(collect(ha, false, v, 3), 3);
        ck_assert_int_eq(v[1], 1);
        ck_assert_uint_eq(collect(hb, true, v, 3), 2);
        ck_assert_int_eq(v[0], 2);
        ck_assert_int_eq(v[1], 0);
}
END_TEST

START_TEST(test_foreach_safe_removes) {
        Item items[4] = { { .value = 0 }, { .value = 1 }, { .value = 2 }, { .value = 3 } };
        LIST_HEAD(Item, head) = NULL;
        Item *i, *n;
        int sum = 0, v[4];

        for (int j = 0; j < 4; j++)
                LIST_APPEND(a, head, &items[j]);
        LIST_FOREACH_SAFE (a, i, n, head) {
                if (i->value % 2 == 0)
                        LIST_REMOVE(a, head, i);
        }
        LIST_FOREACH (a, i, head)
                sum += i->value;
        ck_assert_int_eq(sum, 4);
        ck_assert_uint_eq(collect(head, false, v, 4), 2);
        ck_assert_int_eq(v[0], 1);
        ck_assert_int_eq(v[1], 3);
}
END_TEST

static Suite *list_suite(void) {
        Suite *s = suite_create("list");
        TCase *tc = tcase_create("pure");

        tcase_add_test(tc, test_prepend_append_order);
        tcase_add_test(tc, test_remove_every_position);
        tcase_add_test(tc, test_remove_last_empties);
        tcase_add_test(tc, test_two_lists_one_item);
        tcase_add_test(tc, test_foreach_safe_removes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(list_suite());
}
