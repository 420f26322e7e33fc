# Type stubs for the LibTorch module semrec._text.
import numpy as np
import numpy.typing as npt

def mean_pool(
    hidden: npt.NDArray[np.float32], lengths: npt.NDArray[np.int64], normalize: bool
) -> npt.NDArray[np.float32]: ...
def torch_num_threads() -> int: ...
def set_torch_num_threads(n: int) -> None: ...

class SafetensorsError(ValueError): ...

class WordPieceTokenizer:
    def __init__(self, vocab: list[str], max_chars_per_word: int = 100) -> None: ...
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
