// The LibTorch module. Import torch before it (semrec.text does) so torch's libraries are loaded.
#include "bindings/register.hpp"

PYBIND11_MODULE(_text, m) {
  m.doc() = "semrec LibTorch kernels: text encoder and TextCF training";
  semrec::bindings::register_pooling(m);
  semrec::bindings::register_text_encoder(m);
  semrec::bindings::register_textcf(m);
}
