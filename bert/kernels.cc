// Fused CPU kernels (see kernels.py): the exact GELU, attention's masked softmax and LayerNorm, forward and
// backward, each one pass over memory instead of TensorFlow's chain of element-wise ops (16 for the GELU on
// TF 1.15, 3 for the softmax, 9 for LayerNorm). The formulas are modeling.py's; tests/test_kernels.py compares
// the two. Builds against TF 1.15's headers and TF 2's (Status() is OK on both).
#define EIGEN_USE_THREADS
#include <algorithm>
#include <cmath>
#include <vector>

#include "third_party/eigen3/Eigen/Core"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace tensorflow {
namespace {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

// The gradient ops' first output has the shape of their second input (the forward op's input).
Status ShapeOfSecondInput(InferenceContext* c) {
  c->set_output(0, c->input(1));
  return Status();
}

REGISTER_OP("BertGeluExact")
    .Input("x: float")
    .Output("y: float")
    .Attr("q: list(float)")  // modeling.NORMAL_CDF_Q: Phi(x) = sigmoid(x * Q(x^2))
    .SetShapeFn(shape_inference::UnchangedShape);

REGISTER_OP("BertGeluExactGrad")
    .Input("dy: float")
    .Input("x: float")
    .Output("dx: float")
    .Attr("q: list(float)")
    .SetShapeFn(ShapeOfSecondInput);

REGISTER_OP("BertMaskedSoftmax")
    .Input("scores: float")      // [batch, heads, queries, keys]
    .Input("mask_bias: float")   // [batch, 1, 1, keys]: 0 where attention is allowed, -10000 on padding
    .Output("probabilities: float")
    .Attr("scale: float")
    .SetShapeFn(shape_inference::UnchangedShape);

REGISTER_OP("BertMaskedSoftmaxGrad")
    .Input("dprobabilities: float")
    .Input("probabilities: float")
    .Output("dscores: float")
    .Attr("scale: float")
    .SetShapeFn(ShapeOfSecondInput);

REGISTER_OP("BertLayerNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")           // per row, kept for the gradient
    .Output("inverse_sigma: float")  // per row, 1 / sqrt(variance + epsilon)
    .Attr("epsilon: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle rows;
      TF_RETURN_IF_ERROR(c->Subshape(c->input(0), 0, -1, &rows));
      c->set_output(0, c->input(0));
      c->set_output(1, rows);
      c->set_output(2, rows);
      return Status();
    });

REGISTER_OP("BertLayerNormGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("gamma: float")
    .Input("mean: float")
    .Input("inverse_sigma: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      return Status();
    });

// Phi(x) as an Eigen expression: evaluated element by element in one vectorised loop.
template <typename X>
auto NormalCdf(const X& x, const std::vector<float>& q) {
  auto square = x.square();
  return (x * ((((((square * q[6] + q[5]) * square + q[4]) * square + q[3]) * square + q[2]) * square + q[1]) *
                   square + q[0]))
      .sigmoid();
}

class GeluBase : public OpKernel {
 public:
  explicit GeluBase(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("q", &q_));
    OP_REQUIRES(c, q_.size() == 7, errors::InvalidArgument("q needs 7 coefficients, got ", q_.size()));
  }

 protected:
  std::vector<float> q_;
};

class GeluOp : public GeluBase {
 public:
  using GeluBase::GeluBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &y));
    auto xs = x.flat<float>();
    y->flat<float>().device(ctx->eigen_device<Eigen::ThreadPoolDevice>()) = xs * NormalCdf(xs, q_);
  }
};

class GeluGradOp : public GeluBase {  // dx = dy * (Phi(x) + x phi(x))
 public:
  using GeluBase::GeluBase;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    OP_REQUIRES(ctx, dy.shape() == x.shape(), errors::InvalidArgument("dy and x differ in shape"));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &dx));
    auto xs = x.flat<float>();
    const float inverse_sqrt_2pi = 0.3989422804014327f;
    dx->flat<float>().device(ctx->eigen_device<Eigen::ThreadPoolDevice>()) =
        dy.flat<float>() * (NormalCdf(xs, q_) + xs * (xs.square() * -0.5f).exp() * inverse_sqrt_2pi);
  }
};

// Runs work(begin, end) over [0, units) on the op's CPU threads.
void Parallel(OpKernelContext* ctx, int64 units, int64 cost_per_unit, const std::function<void(int64, int64)>& work) {
  auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
  Shard(threads->num_threads, threads->workers, units, cost_per_unit, work);
}

using RowArray = Eigen::Map<Eigen::ArrayXf>;
using ConstRowArray = Eigen::Map<const Eigen::ArrayXf>;

// softmax(scores * scale + mask_bias) over the last axis, one row at a time.
class MaskedSoftmaxOp : public OpKernel {
 public:
  explicit MaskedSoftmaxOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("scale", &scale_)); }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& scores = ctx->input(0);
    const Tensor& mask = ctx->input(1);
    OP_REQUIRES(ctx, scores.dims() == 4, errors::InvalidArgument("scores must be [batch, heads, queries, keys]"));
    const int64 keys = scores.dim_size(3), rows = scores.NumElements() / std::max<int64>(keys, 1);
    const int64 rows_per_example = scores.dim_size(1) * scores.dim_size(2);
    OP_REQUIRES(ctx, mask.NumElements() == scores.dim_size(0) * keys,
                errors::InvalidArgument("mask_bias must be [batch, 1, 1, keys]"));
    Tensor* probabilities = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, scores.shape(), &probabilities));
    const float *in = scores.flat<float>().data(), *bias = mask.flat<float>().data();
    float* out = probabilities->flat<float>().data();
    const float scale = scale_;
    Parallel(ctx, rows, 20 * keys, [=](int64 begin, int64 end) {
      for (int64 r = begin; r < end; ++r) {
        RowArray row(out + r * keys, keys);
        row = ConstRowArray(in + r * keys, keys) * scale + ConstRowArray(bias + r / rows_per_example * keys, keys);
        row = (row - row.maxCoeff()).exp();
        row *= 1.0f / row.sum();
      }
    });
  }

 private:
  float scale_;
};

// dscores = scale * p * (dp - sum(dp * p)), row by row.
class MaskedSoftmaxGradOp : public OpKernel {
 public:
  explicit MaskedSoftmaxGradOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("scale", &scale_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dprobabilities = ctx->input(0);
    const Tensor& probabilities = ctx->input(1);
    OP_REQUIRES(ctx, dprobabilities.shape() == probabilities.shape(),
                errors::InvalidArgument("dprobabilities and probabilities differ in shape"));
    const int64 keys = probabilities.dim_size(probabilities.dims() - 1);
    const int64 rows = probabilities.NumElements() / std::max<int64>(keys, 1);
    Tensor* dscores = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, probabilities.shape(), &dscores));
    const float *dp = dprobabilities.flat<float>().data(), *p = probabilities.flat<float>().data();
    float* out = dscores->flat<float>().data();
    const float scale = scale_;
    Parallel(ctx, rows, 8 * keys, [=](int64 begin, int64 end) {
      for (int64 r = begin; r < end; ++r) {
        ConstRowArray dp_row(dp + r * keys, keys), p_row(p + r * keys, keys);
        const float dot = (dp_row * p_row).sum();
        RowArray(out + r * keys, keys) = (dp_row - dot) * p_row * scale;
      }
    });
  }

 private:
  float scale_;
};

class LayerNormOp : public OpKernel {
 public:
  explicit LayerNormOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("epsilon", &epsilon_)); }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() >= 1, errors::InvalidArgument("x must have a last axis"));
    const int64 depth = x.dim_size(x.dims() - 1), rows = depth ? x.NumElements() / depth : 0;
    OP_REQUIRES(ctx, ctx->input(1).NumElements() == depth && ctx->input(2).NumElements() == depth,
                errors::InvalidArgument("gamma and beta need ", depth, " values"));
    TensorShape row_shape = x.shape();
    row_shape.RemoveLastDims(1);
    Tensor *y, *mean, *inverse_sigma;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, row_shape, &mean));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, row_shape, &inverse_sigma));
    const float *xs = x.flat<float>().data(), *gamma = ctx->input(1).flat<float>().data(),
                *beta = ctx->input(2).flat<float>().data();
    float *ys = y->flat<float>().data(), *means = mean->flat<float>().data(),
          *inverses = inverse_sigma->flat<float>().data();
    const float epsilon = epsilon_;
    Parallel(ctx, rows, 8 * depth, [=](int64 begin, int64 end) {
      for (int64 r = begin; r < end; ++r) {
        const float* row = xs + r * depth;
        float sum = 0, squares = 0;
#pragma omp simd reduction(+ : sum)
        for (int64 i = 0; i < depth; ++i) sum += row[i];
        const float m = sum / depth;
#pragma omp simd reduction(+ : squares)
        for (int64 i = 0; i < depth; ++i) squares += (row[i] - m) * (row[i] - m);
        const float s = 1.0f / std::sqrt(squares / depth + epsilon);
        float* out = ys + r * depth;
#pragma omp simd
        for (int64 i = 0; i < depth; ++i) out[i] = (row[i] - m) * s * gamma[i] + beta[i];
        means[r] = m;
        inverses[r] = s;
      }
    });
  }

 private:
  float epsilon_;
};

// dx = s (g - mean(g) - x^ mean(g x^)) with g = dy gamma, x^ = (x - mean) s; dgamma = sum dy x^, dbeta = sum dy.
class LayerNormGradOp : public OpKernel {
 public:
  explicit LayerNormGradOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(1);
    OP_REQUIRES(ctx, ctx->input(0).shape() == x.shape(), errors::InvalidArgument("dy and x differ in shape"));
    const int64 depth = x.dim_size(x.dims() - 1), rows = depth ? x.NumElements() / depth : 0;
    Tensor *dx, *dgamma, *dbeta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({depth}), &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({depth}), &dbeta));
    const float *dys = ctx->input(0).flat<float>().data(), *xs = x.flat<float>().data(),
                *gamma = ctx->input(2).flat<float>().data(), *means = ctx->input(3).flat<float>().data(),
                *inverses = ctx->input(4).flat<float>().data();
    float* dxs = dx->flat<float>().data();
    // dgamma and dbeta sum over rows: each block of rows sums into its own slot, the slots are added after.
    const int64 block = 64, blocks = (rows + block - 1) / block;
    std::vector<float> slots(blocks * 2 * depth, 0.0f);
    float* slot_data = slots.data();
    Parallel(ctx, blocks, 16 * depth * block, [=](int64 begin, int64 end) {
      for (int64 k = begin; k < end; ++k) {
        float* dgamma_slot = slot_data + k * 2 * depth;
        float* dbeta_slot = dgamma_slot + depth;
        for (int64 r = k * block; r < std::min(rows, (k + 1) * block); ++r) {
          const float *dy = dys + r * depth, *row = xs + r * depth;
          const float m = means[r], s = inverses[r];
          float sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
          for (int64 i = 0; i < depth; ++i) {
            const float normalized = (row[i] - m) * s, g = dy[i] * gamma[i];
            sum_g += g;
            sum_gx += g * normalized;
            dgamma_slot[i] += dy[i] * normalized;
            dbeta_slot[i] += dy[i];
          }
          const float mean_g = sum_g / depth, mean_gx = sum_gx / depth;
          float* out = dxs + r * depth;
#pragma omp simd
          for (int64 i = 0; i < depth; ++i) out[i] = s * (dy[i] * gamma[i] - mean_g - (row[i] - m) * s * mean_gx);
        }
      }
    });
    float *dgammas = dgamma->flat<float>().data(), *dbetas = dbeta->flat<float>().data();
    std::fill(dgammas, dgammas + depth, 0.0f);
    std::fill(dbetas, dbetas + depth, 0.0f);
    for (int64 k = 0; k < blocks; ++k) {
      for (int64 i = 0; i < depth; ++i) {
        dgammas[i] += slots[k * 2 * depth + i];
        dbetas[i] += slots[k * 2 * depth + depth + i];
      }
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("BertGeluExact").Device(DEVICE_CPU), GeluOp);
REGISTER_KERNEL_BUILDER(Name("BertGeluExactGrad").Device(DEVICE_CPU), GeluGradOp);
REGISTER_KERNEL_BUILDER(Name("BertMaskedSoftmax").Device(DEVICE_CPU), MaskedSoftmaxOp);
REGISTER_KERNEL_BUILDER(Name("BertMaskedSoftmaxGrad").Device(DEVICE_CPU), MaskedSoftmaxGradOp);
REGISTER_KERNEL_BUILDER(Name("BertLayerNorm").Device(DEVICE_CPU), LayerNormOp);
REGISTER_KERNEL_BUILDER(Name("BertLayerNormGrad").Device(DEVICE_CPU), LayerNormGradOp);

}  // namespace
}  // namespace tensorflow
