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
