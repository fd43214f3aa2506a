/* One training step of the book's create_params model in one pass: forward, MSE loss, backward
 * and torch AdamW's for-loop update (decoupled weight decay, lerp'd first moment, bias
 * corrections), with no dense gradient. The batch's gradient rows are gathered into a small
 * buffer (`grads`, `slots`); the update then walks every parameter once, reading and writing the
 * parameter and its two moments and nothing else; rows outside the batch take a zero gradient,
 * as torch's dense one gives them. Built by models/c_library.py, called by models/row_step.py;
 * float and double. */
#include <math.h>
#include <stdint.h>

typedef struct {
    double lo, hi, lr, beta1, beta2, eps, wd, bc1, bc2_sqrt;
} Hypers;

/* What a step needs beside its batch, made by the caller: sizes, the four tables (row-major),
 * their moments (m, v per table), one int32 slot per row (users then items; -1 on entry and on
 * return), two [bs, k + 1] gradient-row buffers (factor row, then bias), and this step's hypers. */
typedef struct {
    int64_t n_users, n_items, k;
    void *tables[4], *moments[8];
    int32_t *slots;
    void *gu, *gi;
    Hypers h;
} Ctx;

/* torch.lerp's formula for a weight below one half: start + weight * (end - start) */
#define ADAM_UPDATE(T, SQRT)                                                              \
static void adam_span_##T(T *restrict p, T *restrict m, T *restrict v,                   \
                          const T *restrict g, int64_t n, const Hypers *h) {              \
    const T decay = (T)(1.0 - h->lr * h->wd), w1 = (T)(1.0 - h->beta1);                   \
    const T b2 = (T)h->beta2, w2 = (T)(1.0 - h->beta2), eps = (T)h->eps;                  \
    const T inv_bc2 = (T)(1.0 / h->bc2_sqrt), step = (T)(-(h->lr / h->bc1));                          \
    if (g) {                                                                              \
        for (int64_t k = 0; k < n; k++) {                                                 \
            T pk = p[k] * decay, mk = m[k] + w1 * (g[k] - m[k]);                          \
            T vk = v[k] * b2 + g[k] * g[k] * w2;                                          \
            m[k] = mk; v[k] = vk;                                                         \
            p[k] = pk + step * (mk / (SQRT(vk) * inv_bc2 + eps));                             \
        }                                                                                 \
    } else {                                                                              \
        for (int64_t k = 0; k < n; k++) {                                                 \
            T pk = p[k] * decay, mk = m[k] + w1 * ((T)0 - m[k]);                          \
            T vk = v[k] * b2;                                                             \
            m[k] = mk; v[k] = vk;                                                         \
            p[k] = pk + step * (mk / (SQRT(vk) * inv_bc2 + eps));                             \
        }                                                                                 \
    }                                                                                     \
}

/* One table [rows, width]: untouched runs of rows in one long loop, touched rows (slots[r] >= 0)
 * with their gathered gradient row (`grads` + slot * `gstride`). */
#define TABLE_UPDATE(T)                                                                   \
static void adam_table_##T(T *p, T *m, T *v, const T *grads, int64_t gstride,             \
                           const int32_t *slots, int64_t rows, int64_t width,             \
                           const Hypers *h) {                                             \
    int64_t r = 0;                                                                        \
    while (r < rows) {                                                                    \
        int64_t start = r;                                                                \
        while (r < rows && slots[r] < 0) r++;                                             \
        if (r > start)                                                                    \
            adam_span_##T(p + start * width, m + start * width, v + start * width, 0,     \
                          (r - start) * width, h);                                        \
        if (r < rows) {                                                                   \
            adam_span_##T(p + r * width, m + r * width, v + r * width,                    \
                          grads + (int64_t)slots[r] * gstride, width, h);                   \
            r++;                                                                          \
        }                                                                                 \
    }                                                                                     \
}

/* x: [bs, 2] int64 (user, item), row stride `xs`; y: [bs]. Returns the mean squared error of the
 * forward, before the update, or -(b + 1) when row b of x indexes outside the tables. */
#define ROW_STEP(T, EXP, SQRT)                                                            \
double row_step_##T(const Ctx *c, const int64_t *x, int64_t xs, const T *y, int64_t bs) {   \
    const Hypers *h = &c->h;                                                              \
    const int64_t k = c->k;                                                               \
    T *uf = c->tables[0], *ub = c->tables[1], *itf = c->tables[2], *ib = c->tables[3];    \
    T **moments = (T **)c->moments, *gu = c->gu, *gi = c->gi;                             \
    int32_t *slot_u = c->slots, *slot_i = c->slots + c->n_users;                          \
    const T range = (T)(h->hi - h->lo), lo = (T)h->lo;                                    \
    int64_t nu = 0, ni = 0;                                                               \
    double loss = 0;                                                                      \
    for (int64_t b = 0; b < bs; b++) {          /* a bad index: -(row + 1), nothing written */ \
        int64_t u = x[b * xs], i = x[b * xs + 1];                                         \
        if (u < 0 || u >= c->n_users || i < 0 || i >= c->n_items) return -(double)(b + 1); \
    }                                                                                     \
    for (int64_t b = 0; b < bs; b++) {                                                    \
        int64_t u = x[b * xs], i = x[b * xs + 1];                                         \
        const T *pu = uf + u * k, *pi = itf + i * k;                                      \
        T dot = 0;                                                                        \
        for (int64_t j = 0; j < k; j++) dot += pu[j] * pi[j];                             \
        T res = dot + (ub[u] + ib[i]);                                                    \
        T s = (T)1 / ((T)1 + EXP(-res));                                                  \
        T diff = (s * range + lo) - y[b];                                                 \
        loss += (double)diff * (double)diff;                                              \
        T dres = (T)2 * diff / (T)bs * range * ((T)1 - s) * s;                            \
        if (slot_u[u] < 0) {                                                              \
            slot_u[u] = (int32_t)nu++;                                                    \
            for (int64_t j = 0; j <= k; j++) gu[slot_u[u] * (k + 1) + j] = 0;             \
        }                                                                                 \
        if (slot_i[i] < 0) {                                                              \
            slot_i[i] = (int32_t)ni++;                                                    \
            for (int64_t j = 0; j <= k; j++) gi[slot_i[i] * (k + 1) + j] = 0;             \
        }                                                                                 \
        T *hu = gu + slot_u[u] * (k + 1), *hi = gi + slot_i[i] * (k + 1);                 \
        for (int64_t j = 0; j < k; j++) { hu[j] += dres * pi[j]; hi[j] += dres * pu[j]; } \
        hu[k] += dres; hi[k] += dres;                                                     \
    }                                                                                     \
    adam_table_##T(uf, moments[0], moments[1], gu, k + 1, slot_u, c->n_users, k, h);        \
    adam_table_##T(ub, moments[2], moments[3], gu + k, k + 1, slot_u, c->n_users, 1, h);     \
    adam_table_##T(itf, moments[4], moments[5], gi, k + 1, slot_i, c->n_items, k, h);        \
    adam_table_##T(ib, moments[6], moments[7], gi + k, k + 1, slot_i, c->n_items, 1, h);     \
    for (int64_t b = 0; b < bs; b++) { slot_u[x[b * xs]] = -1; slot_i[x[b * xs + 1]] = -1; } \
    return loss / (double)bs;                                                             \
}

ADAM_UPDATE(float, sqrtf)
ADAM_UPDATE(double, sqrt)
TABLE_UPDATE(float)
TABLE_UPDATE(double)
ROW_STEP(float, expf, sqrtf)
ROW_STEP(double, exp, sqrt)
