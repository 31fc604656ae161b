#include "CMPIShim.h"
#include <stdio.h>
#include <string.h>

int moco_wait(MPI_Request *request) {
    return MPI_Wait(request, MPI_STATUS_IGNORE);
}

int moco_test(MPI_Request *request, int *flag) {
    return MPI_Test(request, flag, MPI_STATUS_IGNORE);
}

int moco_is_active(void) {
    int initialized = 0, finalized = 0;
    // MPI_Initialized and MPI_Finalized may be called at any time (MPI 3.1 §8.7).
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
}

int moco_error_string(int code, char *buffer, int capacity) {
    if (buffer == NULL || capacity <= 0) return MPI_SUCCESS;
    buffer[0] = '\0';
    if (!moco_is_active()) {
        snprintf(buffer, (size_t)capacity, "MPI error (MPI not active)");
        return MPI_SUCCESS;
    }
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    int rc = MPI_Error_string(code, text, &length);
    if (rc != MPI_SUCCESS) {
        snprintf(buffer, (size_t)capacity, "unknown MPI error");
        return rc;
    }
    if (length < 0) length = 0;
    if (length >= MPI_MAX_ERROR_STRING) length = MPI_MAX_ERROR_STRING - 1;
    text[length] = '\0';
    snprintf(buffer, (size_t)capacity, "%s", text);
    return MPI_SUCCESS;
}

int moco_isend_bytes(const void *buf, int count, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
    return MPI_Isend(buf, count, MPI_BYTE, dest, tag, comm, request);
}

int moco_irecv_bytes(void *buf, int count, int source, int tag, MPI_Comm comm, MPI_Request *request) {
    return MPI_Irecv(buf, count, MPI_BYTE, source, tag, comm, request);
}

int moco_iprobe_any(int tag, MPI_Comm comm, int *flag, int *source, int *count) {
    MPI_Status status;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, tag, comm, flag, &status);
    if (rc != MPI_SUCCESS || !*flag) return rc;
    *source = status.MPI_SOURCE;
    return MPI_Get_count(&status, MPI_BYTE, count);
}

int moco_recv_bytes(void *buf, int count, int source, int tag, MPI_Comm comm) {
    return MPI_Recv(buf, count, MPI_BYTE, source, tag, comm, MPI_STATUS_IGNORE);
}

// MARK: - Progress thread

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

// One lock around every MPI call of the process while the progress thread exists: MPI is
// initialised with MPI_THREAD_SERIALIZED, which allows calls from several threads but never
// two at once (MPI 3.1 §12.4.3).
static pthread_mutex_t mpi_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_t progress_thread;
static atomic_int progress_running = 0, progress_active = 0, progress_stop = 0;
static atomic_long progress_polls = 0;
static long progress_interval_ns = 0;
static MPI_Comm progress_comm = MPI_COMM_NULL;

void moco_mpi_lock(void) { pthread_mutex_lock(&mpi_mutex); }
void moco_mpi_unlock(void) { pthread_mutex_unlock(&mpi_mutex); }

static void sleep_ns(long ns) {
    struct timespec t = { ns / 1000000000L, ns % 1000000000L };
    nanosleep(&t, NULL);
}

// While active: every interval, under the lock, one MPI_Iprobe on a communicator no message is
// ever sent on. It finds nothing, and Open MPI's probe then runs its progress engine
// (opal_progress), which advances every pending request, the non-blocking collectives'
// schedules (coll/libnbc) included. While inactive it only sleeps.
static void *progress_main(void *unused) {
    (void)unused;
    while (!atomic_load(&progress_stop)) {
        if (atomic_load(&progress_active)) {
            int flag = 0;
            pthread_mutex_lock(&mpi_mutex);
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, progress_comm, &flag, MPI_STATUS_IGNORE);
            pthread_mutex_unlock(&mpi_mutex);
            atomic_fetch_add(&progress_polls, 1);
            sleep_ns(progress_interval_ns);
        } else {
            sleep_ns(progress_interval_ns > 1000000L ? progress_interval_ns : 1000000L);
        }
    }
    return NULL;
}

int moco_progress_start(MPI_Comm comm, long interval_us) {
    if (atomic_load(&progress_running)) return 0;
    progress_comm = comm;
    progress_interval_ns = (interval_us > 0 ? interval_us : 1) * 1000L;
    atomic_store(&progress_stop, 0);
    atomic_store(&progress_active, 0);
    int rc = pthread_create(&progress_thread, NULL, progress_main, NULL);
    if (rc == 0) atomic_store(&progress_running, 1);
    return rc;
}

void moco_progress_set_active(int active) { atomic_store(&progress_active, active ? 1 : 0); }

long moco_progress_polls(void) { return atomic_load(&progress_polls); }

void moco_progress_stop(void) {
    if (!atomic_load(&progress_running)) return;
    atomic_store(&progress_stop, 1);
    pthread_join(progress_thread, NULL);
    atomic_store(&progress_running, 0);
}
