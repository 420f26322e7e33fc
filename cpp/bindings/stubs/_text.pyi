# Type stubs for the LibTorch module semrec._text.
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

def mean_pool(
    hidden: npt.NDArray[np.float32], lengths: npt.NDArray[np.int64], normalize: bool
) -> npt.NDArray[np.float32]: ...
def torch_num_threads() -> int: ...
def set_torch_num_threads(n: int) -> None: ...

class SafetensorsError(ValueError): ...

class WordPieceTokenizer:
    def __init__(
        self, vocab: list[str], max_chars_per_word: int = 100, lowercase: bool = True
    ) -> None: ...
    def encode_batch(self, texts: list[str], max_length: int) -> list[list[int]]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pad_id(self) -> int: ...

def read_safetensors_header(path: str) -> tuple[bytes, int, int]: ...

class TensorEntry:
    def __init__(self, name: str, dtype: str, shape: list[int], begin: int, end: int) -> None: ...

class BertConfig:
    vocab_size: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    mean_pooling: bool
    precision: str
    onednn: bool
    reduce_range: bool

def int8_kernel_isa() -> str: ...

class BertEncoder:
    def __init__(
        self,
        config: BertConfig,
        path: str,
        data_start: int,
        entries: list[TensorEntry],
        prefix: str,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def kernels(self) -> str: ...
    def encode(
        self, ids: list[list[int]], batch_size: int, normalize: bool
    ) -> npt.NDArray[np.float32]: ...
    def encode_texts(
        self,
        tokenizer: WordPieceTokenizer,
        texts: list[str],
        max_length: int,
        batch_size: int,
        normalize: bool,
    ) -> npt.NDArray[np.float32]: ...

class TextCFTrainer:
    def __init__(
        self,
        inputs: npt.NDArray[np.float32],
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        users: int,
        items: int,
        weights: dict[str, npt.NDArray[np.float32]],
        hidden: int,
        factors: int,
        negative_slope: float,
        layers: int,
        tau: float,
        negatives: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float,
        seed: int,
        score_block: int = 16777216,
        values: npt.ArrayLike | None = None,
        item_bias: bool = False,
        shared_negatives: bool = False,
    ) -> None: ...
    def epoch(self, epoch_index: int, progress: Callable[[int], object] | None = None) -> float: ...
    def batch_gradients(
        self,
        users: npt.NDArray[np.int32],
        items: npt.NDArray[np.int32],
        negatives: npt.NDArray[np.int32],
    ) -> tuple[float, dict[str, npt.NDArray[np.float32]]]: ...
    def vectors(self, layers: int = -1) -> object: ...
    def item_biases(self) -> npt.NDArray[np.float32]: ...
    def parameters(self) -> dict[str, npt.NDArray[np.float32]]: ...
    def set_parameters(self, weights: dict[str, npt.NDArray[np.float32]]) -> None: ...
    @property
    def positives(self) -> int: ...

class TextCFGraph:
    def __init__(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        users: int,
        items: int,
    ) -> None: ...
    def propagate(self, x: npt.NDArray[np.float32], layers: int) -> npt.NDArray[np.float32]: ...

class EncoderTuner:
    def __init__(
        self,
        encoder: dict[str, npt.NDArray[np.float32]],
        layers: int,
        mlp: dict[str, npt.NDArray[np.float32]],
        offsets: npt.NDArray[np.int64],
        ids: npt.NDArray[np.int32],
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        values: npt.NDArray[np.float32],
        users: int,
        items: int,
        heads: int,
        layer_norm_eps: float,
        tuned_layers: int,
        hidden: int,
        factors: int,
        negative_slope: float,
        tau: float,
        batch_size: int,
        learning_rate: float,
        mlp_learning_rate: float,
        seed: int,
        bucket: int,
        recompute: bool,
        bf16: bool,
        items_per_step: int,
    ) -> None: ...
    def step(self, epoch: int, step: int) -> float: ...
    def step_stopped_at(self, epoch: int, step: int, poll: int) -> tuple[int, bool]: ...
    @property
    def steps_per_epoch(self) -> int: ...
    def batch_gradients(
        self,
        users: npt.NDArray[np.int32],
        items: npt.NDArray[np.int32],
        fresh: npt.NDArray[np.int32] | None = None,
    ) -> tuple[float, dict[str, npt.NDArray[np.float32]]]: ...
    def step_pairs(
        self, epoch: int, step: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]: ...
    def step_items(self, epoch: int, step: int) -> npt.NDArray[np.int32]: ...
    def cached_inputs(self) -> npt.NDArray[np.float32]: ...
    def item_inputs(self) -> npt.NDArray[np.float32]: ...
    def tuned_weights(self) -> dict[str, npt.NDArray[np.float32]]: ...
