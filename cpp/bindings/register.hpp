// One register_<concern>(module) function per binding file; the module files assemble them.
#pragma once

#include <pybind11/pybind11.h>

namespace semrec::bindings {

void register_similarity(pybind11::module_& m);    // similarity.cpp -> _core_*
void register_metrics(pybind11::module_& m);       // metrics.cpp -> _core_*
void register_als(pybind11::module_& m);           // als.cpp -> _core_*
void register_interest(pybind11::module_& m);      // interest.cpp -> _core_*
void register_rerank(pybind11::module_& m);        // rerank.cpp -> _core_*
void register_knn(pybind11::module_& m);           // knn.cpp -> _core_*
void register_pq(pybind11::module_& m);            // pq.cpp -> _core_*
void register_blend(pybind11::module_& m);         // blend.cpp -> _core_*
void register_pooling(pybind11::module_& m);       // pooling.cpp -> _text
void register_text_encoder(pybind11::module_& m);  // text_encoder.cpp -> _text
void register_textcf(pybind11::module_& m);        // textcf.cpp -> _text

}  // namespace semrec::bindings
