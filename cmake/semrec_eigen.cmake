# Eigen: the system copy when present, else the headers of the PyPI distribution cmeel-eigen
# (found through Python_EXECUTABLE, which the including project must have found).
find_package(Eigen3 3.4 CONFIG QUIET NO_MODULE)
if(NOT Eigen3_FOUND)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
            "import cmeel, pathlib; print(pathlib.Path(cmeel.__file__).parents[1] / 'cmeel.prefix')"
    OUTPUT_VARIABLE SEMREC_CMEEL_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_package(Eigen3 3.4 CONFIG REQUIRED NO_MODULE HINTS "${SEMREC_CMEEL_PREFIX}")
endif()
message(STATUS "semrec: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
