package org.mcpjob;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * What the engine refused, with its message. {@link #code()} is one of the
 * constants below (mcpjob.h's MCPJOB_E_*). For {@link #CONFIG} the message
 * holds one configuration error per line, each with its key path
 * ("config: jobs[0] (sync): \"interval\": ..."); {@link #errors()} splits them.
 */
public class McpJobException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public static final int HANDLE = -1;
    public static final int ARG = -2;
    public static final int CONFIG = -3;
    public static final int NO_SUCH_JOB = -4;
    public static final int ALREADY_RUNNING = -5;
    public static final int NOT_RUNNING = -6;
    public static final int BUSY = -7;
    public static final int FAILED = -8;

    private final int code;

    public McpJobException(int code, String message) {
        super(message);
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The configuration errors, one per entry (empty unless code() is CONFIG). */
    public List<String> errors() {
        if (code != CONFIG || getMessage() == null)
            return Collections.emptyList();
        return Arrays.asList(getMessage().split("\n"));
    }
}
