#include "semrec/train/textcf.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>

#include "semrec/train/propagation.hpp"
#include "semrec/train/random.hpp"
#include "semrec/train/sparse.hpp"

namespace semrec::train {

namespace {

const auto kF32 = at::TensorOptions().dtype(at::kFloat);

// Positives of a batch grouped by the row of their user in the score matrix. Rows are the
// batch's distinct users in increasing id order; within a row positives keep batch order.
struct BatchRows {
  std::vector<std::int32_t> users;  // row -> user id
  std::vector<std::int64_t> start;  // row -> first slot in `order` (rows + 1 entries)
  std::vector<std::int64_t> order;  // slots -> position in the batch
};

// torch::nn::Linear draws its first weights from torch's global generator, the user's own
// (torch.manual_seed); set_parameters overwrites them, so the draw is undone on the way out.
class GlobalGeneratorKept {
 public:
  GlobalGeneratorKept() : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    state_ = generator_.get_state();
  }
  ~GlobalGeneratorKept() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state_);
  }
  GlobalGeneratorKept(const GlobalGeneratorKept&) = delete;
  GlobalGeneratorKept& operator=(const GlobalGeneratorKept&) = delete;

 private:
  at::Generator generator_;
  at::Tensor state_;
};

}  // namespace

// The network's activations for some users (rows first) and every item.
struct Activations {
  std::int64_t users = 0;  // leading rows that are users
  at::Tensor user_inputs;  // those users' inputs (only without user_means)
  at::Tensor z;            // first layer pre-activations
  at::Tensor g;            // LeakyReLU(z) (MLP only)
  at::Tensor h;            // network outputs
  at::Tensor bias_input;   // what the item bias reads: items' g (MLP) or inputs (linear)
  at::Tensor b;            // items' biases b(i) (item_bias only)
};

struct TextCFTrainer::Impl {
  TextCFConfig cfg;
  std::int64_t users = 0, items = 0, dim = 0;
  at::Tensor user_inputs, item_inputs;  // users x dim (unused with user_means), items x dim
  SparseRows means;                     // users x items: row-normalised interaction weights
  std::vector<std::int32_t> all_users;  // 0 .. users - 1
  std::unique_ptr<BipartiteGraph> graph;
  std::vector<std::int32_t> pos_user, pos_item;
  std::vector<std::int32_t> pool;      // items with >= 1 training interaction
  std::vector<std::int32_t> user_row;  // user -> row in the current batch, -1 when absent
  std::vector<std::int32_t> item_col;  // item -> column among a batch's touched items, or -1
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  at::Tensor bias_weight;  // 1 x (hidden or dim), item_bias only
  std::unique_ptr<torch::optim::Adam> adam;

  std::vector<at::Tensor> weights() const {
    std::vector<at::Tensor> w{l1->weight, l1->bias};
    if (l2) {
      w.push_back(l2->weight);
      w.push_back(l2->bias);
    }
    if (bias_weight.defined()) w.push_back(bias_weight);
    return w;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> n{"l1.weight", "l1.bias"};
    if (l2) {
      n.push_back("l2.weight");
      n.push_back("l2.bias");
    }
    if (bias_weight.defined()) n.push_back("bias.weight");
    return n;
  }

  // b = bias_input w_b^T (items), when the model has an item bias.
  void add_bias(Activations& a) const {
    if (!bias_weight.defined()) return;
    a.bias_input = l2 ? a.g.narrow(0, a.users, items) : item_inputs;
    a.b = at::mv(a.bias_input, bias_weight[0]);
  }

  // Forward pass of the listed users (all when null) and every item, without autograd: the
  // backward below is written out (two linear layers), which also lets users' first layer
  // come from the items' (user_means): x_u W1^T = Σ_j a_uj (e_j W1^T) with a_uj the row-
  // normalised weights, a sparse product instead of a users x dim x hidden GEMM.
  Activations forward(const std::vector<std::int32_t>* selected) {
    at::NoGradGuard no_grad;
    Activations a;
    a.users = selected ? static_cast<std::int64_t>(selected->size()) : users;
    const at::Tensor& w1 = l1->weight;
    const at::Tensor& b1 = l1->bias;
    a.z = at::empty({a.users + items, w1.size(0)}, kF32);
    at::Tensor z_users = a.z.narrow(0, 0, a.users);
    at::Tensor z_items = a.z.narrow(0, a.users, items);
    at::addmm_out(z_items, b1, item_inputs, w1.t());
    if (cfg.user_means) {
      const std::int32_t* rows = selected ? selected->data() : all_users.data();
      means.multiply_rows(rows, a.users, z_items.data_ptr<float>(), z_items.size(1),
                          z_users.data_ptr<float>());
      for (std::int64_t n = 0; n < a.users; ++n) {  // no history: x_u = 0, z_u = b1
        if (means.row_size(rows[n]) == 0) z_users[n].copy_(b1);
      }
    } else {
      a.user_inputs = selected ? user_inputs.index_select(0, index_tensor(*selected)) : user_inputs;
      at::addmm_out(z_users, b1, a.user_inputs, w1.t());
    }
    if (!l2) {
      a.h = a.z;
      add_bias(a);
      return a;
    }
    a.g = at::leaky_relu(a.z, cfg.negative_slope);
    a.h = at::addmm(l2->bias, a.g, l2->weight.t());
    add_bias(a);
    return a;
  }

  // Sets every weight's .grad() from dL/dh of the rows of `a` and dL/db of the items' biases
  // (`db`, item_bias only).
  // dL/dz of the first layer from dL/dh (rows: users first, then `item_rows` items from row
  // `first_item`), setting the second layer's and the item bias's .grad() on the way.
  at::Tensor upper_backward(const at::Tensor& dh, const at::Tensor& z, const at::Tensor& g,
                            const at::Tensor& bias_input, const at::Tensor& db,
                            std::int64_t first_item, std::int64_t item_rows) {
    if (bias_weight.defined()) bias_weight.mutable_grad() = db.unsqueeze(0).mm(bias_input);
    if (!l2) return dh;  // the linear variant's bias reads the inputs: nothing flows into l1
    l2->weight.mutable_grad() = dh.t().mm(g);
    l2->bias.mutable_grad() = dh.sum(0);
    at::Tensor dg = dh.mm(l2->weight);
    if (bias_weight.defined()) dg.narrow(0, first_item, item_rows).addr_(db, bias_weight[0]);
    return at::leaky_relu_backward(dg, z, cfg.negative_slope, false);
  }

  void backward(const Activations& a, const at::Tensor& dh, const at::Tensor& db,
                const std::vector<std::int32_t>* selected) {
    at::NoGradGuard no_grad;
    const at::Tensor dz = upper_backward(dh, a.z, a.g, a.bias_input, db, a.users, items);
    const at::Tensor dz_users = dz.narrow(0, 0, a.users).contiguous();
    at::Tensor dz_items = dz.narrow(0, a.users, items);
    if (cfg.user_means) {
      // Users' rows reach the weights through the items': dZ_items += A^T dZ_users.
      at::Tensor total = dz_items.clone();
      const std::int32_t* rows = selected ? selected->data() : all_users.data();
      means.add_transposed_rows(rows, a.users, dz_users.data_ptr<float>(), dz.size(1),
                                total.data_ptr<float>());
      at::Tensor db1 = total.sum(0);
      for (std::int64_t n = 0; n < a.users; ++n) {
        if (means.row_size(rows[n]) == 0) db1 += dz_users[n];
      }
      l1->weight.mutable_grad() = total.t().mm(item_inputs);
      l1->bias.mutable_grad() = db1;
    } else {
      at::Tensor dw1 = dz_items.t().mm(item_inputs);
      dw1.addmm_(dz_users.t(), a.user_inputs);
      l1->weight.mutable_grad() = dw1;
      l1->bias.mutable_grad() = dz.sum(0);
    }
  }

  static at::Tensor index_tensor(const std::vector<std::int32_t>& ids) {
    return at::from_blob(const_cast<std::int32_t*>(ids.data()),
                         {static_cast<std::int64_t>(ids.size())},
                         at::TensorOptions().dtype(at::kInt))
        .to(at::kLong);
  }

  // Propagated node vectors (p of the header), or h itself without layers.
  at::Tensor propagated(const at::Tensor& h, float* layer_outputs = nullptr) const {
    if (cfg.layers == 0) {
      if (layer_outputs) std::memcpy(layer_outputs, h.data_ptr<float>(), h.numel() * 4);
      return h;
    }
    at::Tensor p = at::empty_like(h);
    graph->propagate(h.data_ptr<float>(), h.size(1), cfg.layers, p.data_ptr<float>(),
                     layer_outputs);
    return p;
  }

  BatchRows group(const std::int32_t* bu, std::int64_t n) {
    BatchRows rows;
    // Distinct users in increasing id order (a sort: no scan of every user per batch).
    std::vector<std::int32_t> distinct(bu, bu + n);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    rows.users = distinct;
    for (std::size_t r = 0; r < distinct.size(); ++r) {
      user_row[distinct[r]] = static_cast<std::int32_t>(r);
    }
    const std::int64_t n_rows = static_cast<std::int64_t>(distinct.size());
    rows.start.assign(n_rows + 1, 0);
    for (std::int64_t b = 0; b < n; ++b) ++rows.start[user_row[bu[b]] + 1];
    for (std::int64_t r = 0; r < n_rows; ++r) rows.start[r + 1] += rows.start[r];
    rows.order.resize(n);
    std::vector<std::int64_t> fill(rows.start.begin(), rows.start.end() - 1);
    for (std::int64_t b = 0; b < n; ++b) rows.order[fill[user_row[bu[b]]]++] = b;
    for (std::int32_t u : distinct) user_row[u] = -1;
    return rows;
  }

  // Loss (summed over the rows' positives) and its gradient dS for rows [first, first + count)
  // of the score matrix S = Q Vi^T / tau (count x width, row-major; bi and neg are columns).
  // Sampled: each positive against its own negatives. Full (negatives == 0, every item a
  // column): against every item of the pool, whose log-sum-exp is computed once per row.
  double softmax_rows(const BatchRows& rows, std::int64_t first, std::int64_t count,
                      std::int64_t width, const float* s, float* ds, const std::int32_t* bi,
                      const std::int32_t* neg, double scale) const {
    const std::int64_t k_neg = cfg.negatives;
    std::vector<double> row_loss(count, 0.0);
    at::parallel_for(0, count, 16, [&](std::int64_t begin, std::int64_t end) {
      std::vector<double> logits(k_neg > 0 ? k_neg + 1 : pool.size());
      for (std::int64_t c = begin; c < end; ++c) {
        const std::int64_t r = first + c;
        const float* srow = s + c * width;
        float* drow = ds + c * width;
        double loss = 0.0;
        if (k_neg == 0) {
          double top = -std::numeric_limits<double>::infinity();
          for (std::size_t k = 0; k < pool.size(); ++k) {
            logits[k] = srow[pool[k]];
            top = std::max(top, logits[k]);
          }
          double total = 0.0;
          for (double& l : logits) total += (l = std::exp(l - top));
          const double lse = top + std::log(total);
          const double positives = static_cast<double>(rows.start[r + 1] - rows.start[r]);
          for (std::size_t k = 0; k < pool.size(); ++k) {
            drow[pool[k]] += static_cast<float>(positives * logits[k] / total * scale);
          }
          for (std::int64_t slot = rows.start[r]; slot < rows.start[r + 1]; ++slot) {
            const std::int32_t i = bi[rows.order[slot]];
            loss += lse - srow[i];
            drow[i] -= static_cast<float>(scale);
          }
          row_loss[c] = loss;
          continue;
        }
        for (std::int64_t slot = rows.start[r]; slot < rows.start[r + 1]; ++slot) {
          const std::int64_t b = rows.order[slot];
          const std::int32_t* nb = neg + b * k_neg;
          logits[0] = srow[bi[b]];
          double top = logits[0];
          for (std::int64_t k = 0; k < k_neg; ++k) {
            logits[k + 1] = srow[nb[k]];
            top = std::max(top, logits[k + 1]);
          }
          double total = 0.0;
          for (std::int64_t k = 0; k <= k_neg; ++k)
            total += (logits[k] = std::exp(logits[k] - top));
          loss += top + std::log(total) - srow[bi[b]];
          drow[bi[b]] += static_cast<float>((logits[0] / total - 1.0) * scale);
          for (std::int64_t k = 0; k < k_neg; ++k) {
            drow[nb[k]] += static_cast<float>(logits[k + 1] / total * scale);
          }
        }
        row_loss[c] = loss;
      }
    });
    double sum = 0.0;
    for (double l : row_loss) sum += l;  // fixed order: the same for any thread count
    return sum;
  }

  // The loss (summed over the batch's n positives) of the scores S = Q Vi^T / tau (+ b, each
  // column's bias), and its gradients dQ, dVi and db (defined with b). bi and neg are
  // columns of Vi. The dense score matrix is processed in blocks of rows (score_block).
  struct Scored {
    double loss = 0.0;
    at::Tensor dq, dvi, db;
  };
  Scored scored(const BatchRows& rows, const at::Tensor& q, const at::Tensor& vi,
                const at::Tensor& b, const std::int32_t* bi, std::int64_t n,
                const std::int32_t* neg) const {
    const std::int64_t n_rows = q.size(0), width = vi.size(0);
    Scored out;
    out.dq = at::empty({n_rows, q.size(1)}, kF32);
    out.dvi = at::zeros({width, q.size(1)}, kF32);
    if (b.defined()) out.db = at::zeros({width}, kF32);
    const double inv_tau = 1.0 / cfg.tau;
    const std::int64_t chunk = std::max<std::int64_t>(1, cfg.score_block / width);
    for (std::int64_t first = 0; first < n_rows; first += chunk) {
      const std::int64_t count = std::min(chunk, n_rows - first);
      const at::Tensor qc = q.narrow(0, first, count);
      at::Tensor s = at::mm(qc, vi.t()).mul_(inv_tau);
      if (b.defined()) s.add_(b);  // each column's logit gains its item's bias
      s = s.contiguous();
      at::Tensor ds = at::zeros_like(s);
      out.loss += softmax_rows(rows, first, count, width, s.data_ptr<float>(), ds.data_ptr<float>(),
                               bi, neg, 1.0 / static_cast<double>(n));
      if (b.defined()) out.db.add_(ds.sum(0));
      at::Tensor dqc = out.dq.narrow(0, first, count);
      at::mm_out(dqc, ds, vi).mul_(inv_tau);
      out.dvi.addmm_(ds.t(), qc, 1.0, inv_tau);
    }
    return out;
  }

  // Forward and backward of one batch; the weights' .grad() hold the gradient afterwards.
  double forward_backward(const std::int32_t* bu, const std::int32_t* bi, std::int64_t n,
                          const std::int32_t* neg) {
    at::NoGradGuard no_grad;
    const BatchRows rows = group(bu, n);
    const std::vector<std::int32_t> touched = touched_items(bi, n, neg);
    if (!touched.empty()) {
      // item_col goes back to all -1 however the batch ends (an exception included).
      struct Unmark {
        std::vector<std::int32_t>& col;
        const std::vector<std::int32_t>& marked;
        ~Unmark() {
          for (std::int32_t i : marked) col[i] = -1;
        }
      } unmark{item_col, touched};
      return forward_backward_touched(rows, touched, bi, n, neg);
    }
    const std::int64_t n_rows = static_cast<std::int64_t>(rows.users.size());
    // Without propagation only the batch's users need the network; with it, every node does.
    const std::vector<std::int32_t>* selected = cfg.layers == 0 ? &rows.users : nullptr;
    const Activations act = forward(selected);
    const at::Tensor p = propagated(act.h.contiguous());
    const at::Tensor norms = p.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    const at::Tensor v = p / norms;
    const at::Tensor row_ids = index_tensor(rows.users);
    const at::Tensor q = selected ? v.narrow(0, 0, n_rows) : v.index_select(0, row_ids);
    const at::Tensor vi = v.narrow(0, act.users, items);
    const Scored sc = scored(rows, q, vi, act.b, bi, n, neg);
    const at::Tensor &dq = sc.dq, &dvi = sc.dvi, &db = sc.db;
    at::Tensor dv = at::zeros_like(v);
    if (selected) {
      dv.narrow(0, 0, n_rows).copy_(dq);
    } else {
      dv.index_copy_(0, row_ids, dq);
    }
    dv.narrow(0, act.users, items).copy_(dvi);
    // Through v = p / ||p||: dp = (dv - v (v . dv)) / ||p||.
    const at::Tensor dp = ((dv - v * (v * dv).sum({1}, /*keepdim=*/true)) / norms).contiguous();
    backward(act, propagated(dp), db, selected);  // the propagation operator is symmetric
    return sc.loss / static_cast<double>(n);
  }

  // The items a batch touches (positives and negatives), sorted, each given its column in
  // item_col, when the batch can run the network over them alone (no propagation, sampled
  // negatives, under half the catalogue touched); else empty, item_col left all -1.
  std::vector<std::int32_t> touched_items(const std::int32_t* bi, std::int64_t n,
                                          const std::int32_t* neg) {
    if (cfg.layers != 0 || cfg.negatives == 0) return {};
    std::vector<std::int32_t> touched;
    // Reserved up front: no allocation can fail between marking item_col and resetting it.
    touched.reserve(static_cast<std::size_t>(std::min(items, n * (cfg.negatives + 1))));
    const auto mark = [&](std::int32_t i) {
      if (item_col[i] < 0) {
        item_col[i] = 0;
        touched.push_back(i);
      }
    };
    // Marking stops once half the catalogue is touched: the batch takes the full path then.
    const auto few_so_far = [&] { return 2 * static_cast<std::int64_t>(touched.size()) < items; };
    for (std::int64_t b = 0; b < n && few_so_far(); ++b) mark(bi[b]);
    for (std::int64_t k = 0; k < n * cfg.negatives && few_so_far(); ++k) mark(neg[k]);
    const bool few = few_so_far();
    if (few) std::sort(touched.begin(), touched.end());
    for (std::size_t c = 0; c < touched.size(); ++c) {
      item_col[touched[c]] = few ? static_cast<std::int32_t>(c) : -1;
    }
    if (!few) touched.clear();
    return touched;
  }

  // forward_backward for a batch whose touched items (touched_items) and users alone go
  // through the network: the two linear layers on their rows, nothing else. Users' inputs
  // are their rows of user_inputs, or (user_means) their means of the items' inputs.
  double forward_backward_touched(const BatchRows& rows, const std::vector<std::int32_t>& touched,
                                  const std::int32_t* bi, std::int64_t n, const std::int32_t* neg) {
    at::NoGradGuard no_grad;
    const std::int64_t n_rows = static_cast<std::int64_t>(rows.users.size());
    const std::int64_t m = static_cast<std::int64_t>(touched.size());
    at::Tensor x = at::empty({n_rows + m, dim}, kF32);  // users' rows, then the items'
    at::Tensor x_items = x.narrow(0, n_rows, m);
    at::index_select_out(x_items, item_inputs, 0, index_tensor(touched));
    if (cfg.user_means) {
      means.multiply_rows(rows.users.data(), n_rows, item_inputs.data_ptr<float>(), dim,
                          x.data_ptr<float>());
    } else {
      at::Tensor x_users = x.narrow(0, 0, n_rows);
      at::index_select_out(x_users, user_inputs, 0, index_tensor(rows.users));
    }
    // The batch's positives and negatives as columns of the touched items.
    std::vector<std::int32_t> bi_col(n), neg_col(n * cfg.negatives);
    for (std::int64_t b = 0; b < n; ++b) bi_col[b] = item_col[bi[b]];
    for (std::size_t k = 0; k < neg_col.size(); ++k) neg_col[k] = item_col[neg[k]];

    const at::Tensor z = at::addmm(l1->bias, x, l1->weight.t());
    const at::Tensor g = l2 ? at::leaky_relu(z, cfg.negative_slope) : at::Tensor();
    const at::Tensor h = l2 ? at::addmm(l2->bias, g, l2->weight.t()) : z;
    const at::Tensor bias_input = l2 ? g.narrow(0, n_rows, m) : x_items;
    const at::Tensor b = bias_weight.defined() ? at::mv(bias_input, bias_weight[0]) : at::Tensor();
    const at::Tensor norms = h.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    const at::Tensor v = h / norms;
    const Scored sc = scored(rows, v.narrow(0, 0, n_rows), v.narrow(0, n_rows, m), b, bi_col.data(),
                             n, neg_col.data());
    const at::Tensor dv = at::cat({sc.dq, sc.dvi});
    const at::Tensor dh = (dv - v * (v * dv).sum({1}, /*keepdim=*/true)) / norms;

    const at::Tensor dz = upper_backward(dh, z, g, bias_input, sc.db, n_rows, m);
    l1->weight.mutable_grad() = dz.t().mm(x);
    l1->bias.mutable_grad() = dz.sum(0);
    return sc.loss / static_cast<double>(n);
  }
};

TextCFTrainer::TextCFTrainer(const TextCFConfig& config, const float* inputs, std::int64_t dim,
                             TrainingPairs pairs, const std::vector<NamedArray>& initial)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = config;
  if (dim < 1 || config.factors < 1 || config.hidden < 0 || config.layers < 0 ||
      config.negatives < 0 || config.batch_size < 1 || !(config.tau > 0) ||
      config.score_block < 1) {
    throw std::invalid_argument("TextCFTrainer: invalid configuration");
  }
  m.users = pairs.users;
  m.items = pairs.items;
  m.dim = dim;
  if (m.items < 1) throw std::invalid_argument("TextCFTrainer: no items");
  m.graph = std::make_unique<BipartiteGraph>(pairs.indptr, pairs.indices, pairs.users, pairs.items);
  const std::int64_t nodes = m.users + m.items;
  const at::Tensor all = at::from_blob(const_cast<float*>(inputs), {nodes, dim}, kF32);
  m.item_inputs = all.narrow(0, m.users, m.items).clone();
  if (!config.user_means) m.user_inputs = all.narrow(0, 0, m.users).clone();
  const std::int64_t nnz = pairs.indptr[pairs.users];
  if (nnz < 1) throw std::invalid_argument("TextCFTrainer: no interactions");
  if (config.user_means) {
    if (!pairs.values) throw std::invalid_argument("TextCFTrainer: user_means needs weights");
    std::vector<std::int64_t> ptr(pairs.indptr, pairs.indptr + m.users + 1);
    std::vector<std::int32_t> idx(pairs.indices, pairs.indices + nnz);
    std::vector<float> val(nnz);
    for (std::int64_t u = 0; u < m.users; ++u) {
      double mass = 0.0;
      for (std::int64_t k = ptr[u]; k < ptr[u + 1]; ++k) mass += pairs.values[k];
      if (ptr[u + 1] > ptr[u] && !(mass > 0)) {
        throw std::invalid_argument("TextCFTrainer: a user's weights must sum to > 0");
      }
      for (std::int64_t k = ptr[u]; k < ptr[u + 1]; ++k) {
        val[k] = static_cast<float>(pairs.values[k] / mass);
      }
    }
    m.means = SparseRows(std::move(ptr), std::move(idx), std::move(val), m.items);
  }
  m.all_users.resize(m.users);
  std::iota(m.all_users.begin(), m.all_users.end(), 0);
  m.pos_user.resize(nnz);
  m.pos_item.assign(pairs.indices, pairs.indices + nnz);
  std::vector<char> warm(m.items, 0);
  for (std::int64_t u = 0; u < m.users; ++u) {
    for (std::int64_t k = pairs.indptr[u]; k < pairs.indptr[u + 1]; ++k) {
      m.pos_user[k] = static_cast<std::int32_t>(u);
      warm[pairs.indices[k]] = 1;
    }
  }
  for (std::int64_t i = 0; i < m.items; ++i) {
    if (warm[i]) m.pool.push_back(static_cast<std::int32_t>(i));
  }
  m.user_row.assign(m.users, -1);
  m.item_col.assign(m.items, -1);

  const std::int64_t first_out = config.hidden > 0 ? config.hidden : config.factors;
  {
    GlobalGeneratorKept kept;
    m.l1 = torch::nn::Linear(torch::nn::LinearOptions(dim, first_out));
    if (config.hidden > 0) m.l2 = torch::nn::Linear(config.hidden, config.factors);
  }
  if (config.item_bias) {
    m.bias_weight = at::zeros({1, config.hidden > 0 ? config.hidden : dim}, kF32);
    m.bias_weight.set_requires_grad(true);
  }
  set_parameters(initial);
  std::vector<at::Tensor> params = m.weights();
  m.adam = std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(config.learning_rate).weight_decay(config.weight_decay));
}

TextCFTrainer::~TextCFTrainer() = default;

double TextCFTrainer::epoch(std::int64_t epoch_index, const StopCheck& stop,
                            const BatchProgress& progress) {
  Impl& m = *impl_;
  const std::int64_t total = static_cast<std::int64_t>(m.pos_user.size());
  const std::int64_t batch = m.cfg.batch_size, k_neg = m.cfg.negatives;
  const std::vector<std::int64_t> perm = epoch_order(total, m.cfg.seed, epoch_index);
  std::vector<std::int32_t> bu(batch), bi(batch), neg(batch * k_neg);
  double loss = 0.0;
  const std::uint64_t pool = m.pool.size();
  for (std::int64_t start = 0, step = 0; start < total; start += batch, ++step) {
    if (stop && stop()) throw Interrupted();
    const std::int64_t n = std::min(batch, total - start);
    for (std::int64_t b = 0; b < n; ++b) {
      bu[b] = m.pos_user[perm[start + b]];
      bi[b] = m.pos_item[perm[start + b]];
    }
    SplitMix draw{derive(m.cfg.seed, static_cast<std::uint64_t>(epoch_index) + 1,
                         static_cast<std::uint64_t>(step) + 1)};
    if (m.cfg.shared_negatives) {  // one draw, every positive's row
      for (std::int64_t k = 0; k < k_neg; ++k) neg[k] = m.pool[draw.below(pool)];
      for (std::int64_t b = 1; b < n; ++b) {
        std::copy_n(neg.begin(), k_neg, neg.begin() + b * k_neg);
      }
    } else {
      for (std::int64_t k = 0; k < n * k_neg; ++k) neg[k] = m.pool[draw.below(pool)];
    }
    loss += m.forward_backward(bu.data(), bi.data(), n, neg.data()) * static_cast<double>(n);
    m.adam->step();
    if (progress) progress(start + n);
  }
  return loss / static_cast<double>(total);
}

double TextCFTrainer::batch_gradients(const std::int32_t* users, const std::int32_t* items,
                                      std::int64_t n, const std::int32_t* negatives,
                                      std::vector<NamedArray>& gradients) {
  Impl& m = *impl_;
  if (n < 1) throw std::invalid_argument("batch_gradients: empty batch");
  for (std::int64_t b = 0; b < n; ++b) {
    if (users[b] < 0 || users[b] >= m.users || items[b] < 0 || items[b] >= m.items) {
      throw std::out_of_range("batch_gradients: user or item id out of range");
    }
  }
  for (std::int64_t k = 0; k < n * m.cfg.negatives; ++k) {
    if (negatives[k] < 0 || negatives[k] >= m.items) {
      throw std::out_of_range("batch_gradients: negative item id out of range");
    }
  }
  const double loss = m.forward_backward(users, items, n, negatives);
  gradients.clear();
  const auto names = m.names();
  const auto ws = m.weights();
  for (std::size_t k = 0; k < ws.size(); ++k) {
    const at::Tensor g = ws[k].grad().contiguous();
    gradients.push_back({names[k], g.sizes().vec(),
                         std::vector<float>(g.data_ptr<float>(), g.data_ptr<float>() + g.numel())});
  }
  return loss;
}

void TextCFTrainer::item_biases(float* out) const {
  Impl& m = *impl_;
  if (!m.bias_weight.defined()) throw std::logic_error("item_biases: the model has no item bias");
  at::NoGradGuard no_grad;
  const std::vector<std::int32_t> no_users;
  const at::Tensor b = m.forward(&no_users).b.contiguous();
  std::memcpy(out, b.data_ptr<float>(), sizeof(float) * m.items);
}

void TextCFTrainer::vectors(float* out, float* layer_outputs) const {
  Impl& m = *impl_;
  at::NoGradGuard no_grad;
  const at::Tensor h = m.forward(nullptr).h.contiguous();
  const at::Tensor p = m.propagated(h, layer_outputs);
  const at::Tensor v = (p / p.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12)).contiguous();
  std::memcpy(out, v.data_ptr<float>(), sizeof(float) * v.numel());
}

std::vector<NamedArray> TextCFTrainer::parameters() const {
  std::vector<NamedArray> out;
  const auto names = impl_->names();
  const auto ws = impl_->weights();
  for (std::size_t k = 0; k < ws.size(); ++k) {
    const at::Tensor w = ws[k].detach().contiguous();
    out.push_back({names[k], w.sizes().vec(),
                   std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel())});
  }
  return out;
}

void TextCFTrainer::set_parameters(const std::vector<NamedArray>& values) {
  Impl& m = *impl_;
  const auto names = m.names();
  const auto ws = m.weights();
  if (values.size() != ws.size()) {
    throw std::invalid_argument("set_parameters: expected " + std::to_string(ws.size()) +
                                " weight arrays, got " + std::to_string(values.size()));
  }
  at::NoGradGuard no_grad;
  for (std::size_t k = 0; k < ws.size(); ++k) {
    const NamedArray* found = nullptr;
    for (const auto& v : values) {
      if (v.name == names[k]) found = &v;
    }
    if (!found) throw std::invalid_argument("set_parameters: missing " + names[k]);
    if (found->shape != ws[k].sizes().vec() ||
        static_cast<std::int64_t>(found->values.size()) != ws[k].numel()) {
      throw std::invalid_argument("set_parameters: " + names[k] + " has the wrong shape");
    }
    at::Tensor src = at::from_blob(const_cast<float*>(found->values.data()), ws[k].sizes(), kF32);
    at::Tensor dst = ws[k];
    dst.copy_(src);
  }
}

bool TextCFTrainer::item_bias() const { return impl_->bias_weight.defined(); }
std::int64_t TextCFTrainer::items() const { return impl_->items; }
std::int64_t TextCFTrainer::nodes() const { return impl_->users + impl_->items; }
std::int64_t TextCFTrainer::factors() const { return impl_->cfg.factors; }
std::int64_t TextCFTrainer::negatives() const { return impl_->cfg.negatives; }
std::int64_t TextCFTrainer::positives() const {
  return static_cast<std::int64_t>(impl_->pos_user.size());
}

}  // namespace semrec::train
