// CMPIShim: exposes Open MPI's handle *macros* to Swift.
//
// MPI 3.1 §2.5.4 ("Named Constants") lets an implementation define predefined handles such as
// MPI_COMM_WORLD, MPI_FLOAT or MPI_SUM as link-time constants or macros. Open MPI defines them as
// macros that take the address of internal globals (`((MPI_Comm) &ompi_mpi_comm_world)`), which the
// Swift Clang importer cannot import. Each getter below returns the handle's value; they are
// `static inline` so they cost nothing. Functions that need MPI_STATUS_IGNORE or a fixed-size buffer
// live in CMPIShim.c.
#ifndef MOCO_CMPISHIM_H
#define MOCO_CMPISHIM_H

#include <mpi.h>

// Communicators (MPI 3.1 §6.4).
static inline MPI_Comm moco_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm moco_comm_null(void) { return MPI_COMM_NULL; }

// Predefined datatypes (MPI 3.1 §3.2.2, Table 3.2).
static inline MPI_Datatype moco_type_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype moco_type_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype moco_type_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype moco_type_int(void) { return MPI_INT; }
static inline MPI_Datatype moco_type_byte(void) { return MPI_BYTE; }

// Predefined reduction operations (MPI 3.1 §5.9.2).
static inline MPI_Op moco_op_sum(void) { return MPI_SUM; }
static inline MPI_Op moco_op_max(void) { return MPI_MAX; }
static inline MPI_Op moco_op_min(void) { return MPI_MIN; }

// In-place buffer marker for collectives (MPI 3.1 §5.2.1).
static inline void *moco_in_place(void) { return MPI_IN_PLACE; }

// Error handlers (MPI 3.1 §8.3) and the success code (MPI 3.1 §8.4).
static inline MPI_Errhandler moco_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int moco_success(void) { return MPI_SUCCESS; }

// Thread support levels (MPI 3.1 §12.4.3); ordered SINGLE < FUNNELED < SERIALIZED < MULTIPLE.
static inline int moco_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int moco_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int moco_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int moco_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

// Request handles (MPI 3.1 §3.7.1).
static inline MPI_Request moco_request_null(void) { return MPI_REQUEST_NULL; }

/// MPI_Wait with MPI_STATUS_IGNORE (MPI 3.1 §3.7.3). On return *request is MPI_REQUEST_NULL.
int moco_wait(MPI_Request *request);

/// MPI_Test (MPI 3.1 §3.7.3) with MPI_STATUS_IGNORE: drives progress of a pending request and sets
/// `*flag` to 1 once it is complete (the request handle is then MPI_REQUEST_NULL).
int moco_test(MPI_Request *request, int *flag);

/// MPI_Error_string into `buffer` (capacity `capacity`, always NUL-terminated). Works whether or not
/// MPI is initialized: before MPI_Init (or after MPI_Finalize) it writes a generic text instead of
/// calling into MPI. Returns the MPI return code of MPI_Error_string, or MPI_SUCCESS.
int moco_error_string(int code, char *buffer, int capacity);

/// 1 if MPI_Init has been called and MPI_Finalize has not, else 0 (MPI 3.1 §8.7.1).
int moco_is_active(void);

/// Point-to-point byte messages for the collective watchdog's report (MPI 3.1 §3.7.2), on its
/// own communicator: MPI_Isend / MPI_Irecv of `count` MPI_BYTEs.
int moco_isend_bytes(const void *buf, int count, int dest, int tag, MPI_Comm comm, MPI_Request *request);
int moco_irecv_bytes(void *buf, int count, int source, int tag, MPI_Comm comm, MPI_Request *request);
/// MPI_Iprobe from any source with `tag` (MPI 3.1 §3.8.1): *flag = 1 when a message is waiting,
/// with its *source and byte *count.
int moco_iprobe_any(int tag, MPI_Comm comm, int *flag, int *source, int *count);
/// Blocking MPI_Recv of `count` bytes from `source` (MPI_STATUS_IGNORE), after a probe found them.
int moco_recv_bytes(void *buf, int count, int source, int tag, MPI_Comm comm);
/// The progress thread (CMPIShim.c). MPI is initialised with MPI_THREAD_SERIALIZED; while the
/// thread exists, every MPI call of the process must hold `moco_mpi_lock`. Open MPI advances
/// non-blocking operations only inside MPI calls; while active, the thread makes such a call (an
/// MPI_Iprobe on `comm`, a communicator no message is ever sent on) every `interval_us`, so a
/// gradient allreduce moves while the backward pass computes.
void moco_mpi_lock(void);
void moco_mpi_unlock(void);
/// Starts the thread (inactive). Returns 0 or pthread_create's error.
int moco_progress_start(MPI_Comm comm, long interval_us);
/// Active: poll every interval; inactive: sleep.
void moco_progress_set_active(int active);
/// Probes made so far (for tests and reports).
long moco_progress_polls(void);
/// Stops and joins the thread (before MPI_Finalize).
void moco_progress_stop(void);
#endif
